// Model names and blob digests: what the store accepts before anything touches the disk.
#include <gtest/gtest.h>

#include <string>

#include "store/names.h"

namespace minnow::store {
namespace {

TEST(ModelName, DefaultsAndShortForms) {
  auto n = parse_model_name("smollm2:135m");
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(n->host, "registry.ollama.ai");
  EXPECT_EQ(n->ns, "library");
  EXPECT_EQ(n->model, "smollm2");
  EXPECT_EQ(n->tag, "135m");
  EXPECT_EQ(n->display(), "smollm2:135m");
  EXPECT_EQ(n->manifest_path(), "registry.ollama.ai/library/smollm2/135m");

  auto bare = parse_model_name("helper");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->tag, "latest");
  EXPECT_EQ(bare->display(), "helper:latest");

  auto ns = parse_model_name("me/helper");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->ns, "me");
  EXPECT_EQ(ns->display(), "me/helper:latest");

  auto hf = parse_model_name("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M");
  ASSERT_TRUE(hf.ok()) << hf.error();
  EXPECT_EQ(hf->host, "hf.co");
  EXPECT_EQ(hf->ns, "bartowski");
  EXPECT_EQ(hf->model, "SmolLM2-135M-Instruct-GGUF");
  EXPECT_EQ(hf->tag, "Q4_K_M");
  EXPECT_EQ(hf->display(), "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M");

  auto port = parse_model_name("localhost:5000/team/m:v1");
  ASSERT_TRUE(port.ok()) << port.error();
  EXPECT_EQ(port->host, "localhost:5000");
  EXPECT_EQ(port->tag, "v1");
  EXPECT_EQ(*parse_model_name(port->display()), *port);  // display() parses back
}

void expect_refused(const std::string& text, const std::string& why) {
  auto n = parse_model_name(text);
  ASSERT_FALSE(n.ok()) << "'" << text << "' was accepted";
  EXPECT_NE(n.error().find(why), std::string::npos) << text << " -> " << n.error();
}

TEST(ModelName, RefusesWhatCouldEscapeOrMislead) {
  expect_refused("", "empty");
  expect_refused("/etc/passwd", "absolute path");
  expect_refused("../x", "namespace '..' must start with a letter or digit");
  expect_refused("a/../b", "namespace '..' must start");
  expect_refused("a..b", "contains '..'");
  expect_refused("m:..", "tag '..' must start");
  expect_refused("a/b/c/d", "at most host/namespace/model");
  expect_refused("a//b", "namespace is empty");
  expect_refused("model:", "tag is empty");
  expect_refused("mo del", "has the character ' '");
  expect_refused("mo\\del", "has the character '\\'");
  expect_refused("model:ta/g", "namespace 'model:ta' has the character ':'");
  expect_refused(".hidden", "must start with a letter or digit");
  expect_refused("-flag", "must start with a letter or digit");
  expect_refused(std::string(81, 'a'), "longer than 80");
  expect_refused("m:" + std::string(81, 't'), "tag is longer than 80");
  expect_refused("h:x/a/b", "port 'x' is not a number");
  expect_refused(std::string(400, 'h') + "/a/b", "longer than");
  EXPECT_TRUE(parse_model_name(std::string(80, 'a') + ":" + std::string(80, 'b')).ok());
}

TEST(Digest, OnlySha256WithSixtyFourLowercaseHex) {
  const std::string hex(64, 'a');
  auto ok = parse_digest("sha256:" + hex);
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(*ok, hex);
  EXPECT_EQ(blob_file_name(hex), "sha256-" + hex);
  for (const std::string& bad :
       {"sha256-" + hex, "sha512:" + hex, "sha256:" + hex.substr(1), "sha256:" + hex + "0",
        "sha256:" + std::string(63, 'a') + "G", "sha256:" + std::string(64, 'A'),
        "sha256:../../../../etc/passwd" + std::string(36, 'a'), std::string("")}) {
    auto r = parse_digest(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().find("sha256:<64 lowercase hex"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace minnow::store
