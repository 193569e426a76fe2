// Images staged whole: where the file goes, and what a node does with the bytes it receives. A
// copy that differs from the image is never put in place, and nothing is left beside the target.
#include <fstream>

#include <gtest/gtest.h>

#include "stage/stage.hpp"
#include "temp_dir.hpp"

using namespace ferry;
using namespace ferry::stage;

namespace {

std::string image_bytes(std::size_t size) {
  std::string bytes = "hsqs";
  while (bytes.size() < size) bytes += static_cast<char>(bytes.size() * 7919 % 251);
  return bytes.substr(0, size);
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The names in dir but the lock files, which stay (as they do beside a staged env).
std::vector<std::string> left_in(const TempDir& t, const std::string& dir) {
  std::vector<std::string> names = t.names(dir);
  std::erase_if(names, [](const std::string& n) { return n.ends_with(".ferry-lock"); });
  return names;
}

}  // namespace

TEST(ImageTarget, AFileNameOrADirectory) {
  EXPECT_EQ(image_target("/mnt/bb/u/torch.sqfs", "/lus/p/images/big.sqfs"), "/mnt/bb/u/torch.sqfs");
  EXPECT_EQ(image_target("/mnt/bb/u", "/lus/p/images/big.sqfs"), "/mnt/bb/u/big.sqfs");
  EXPECT_EQ(image_target("/mnt/bb/u/", "/lus/p/images/big.sqfs"), "/mnt/bb/u/big.sqfs");
}

TEST(ImageReceiver, PiecesInOrderArePutInPlaceOnCommit) {
  TempDir t;
  std::string image = image_bytes(10 << 20);
  write(t / "source.sqfs", image);
  std::uint64_t id = image_identity(t / "source.sqfs");
  std::filesystem::create_directory(t / "node");
  {
    ImageReceiver r(t / "node/x.sqfs", id);
    EXPECT_FALSE(r.present());
    for (std::size_t at = 0; at < image.size(); at += 4 << 20)
      r.write(std::string_view(image).substr(at, 4 << 20));
    r.finish();
    EXPECT_FALSE(std::filesystem::exists(t / "node/x.sqfs"));  // not before the commit
    r.commit();
  }
  EXPECT_EQ(read(t / "node/x.sqfs"), image);
  EXPECT_EQ(left_in(t, "node"), std::vector<std::string>{"x.sqfs"});
  EXPECT_TRUE(holds_image(t / "node/x.sqfs", id));
  ImageReceiver again(t / "node/x.sqfs", id);
  EXPECT_TRUE(again.present());
}

TEST(ImageReceiver, ACorruptCopyIsRefusedAndLeavesNothing) {
  TempDir t;
  std::string image = image_bytes(1 << 20);
  write(t / "source.sqfs", image);
  std::uint64_t id = image_identity(t / "source.sqfs");
  std::filesystem::create_directory(t / "node");
  write(t / "node/x.sqfs", "the old image, kept");
  {
    ImageReceiver r(t / "node/x.sqfs", id);
    EXPECT_FALSE(r.present());  // another file at the target is not the image
    std::string flipped = image;
    flipped[12345] ^= 1;
    r.write(flipped);
    try {
      r.finish();
      ADD_FAILURE() << "a copy with one bit flipped was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("x.sqfs: the copy on this node differs from the image"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(read(t / "node/x.sqfs"), "the old image, kept");
  EXPECT_EQ(left_in(t, "node"), std::vector<std::string>{"x.sqfs"});
}

TEST(ImageReceiver, AdoptsTheNodesCopyAndChecksIt) {
  TempDir t;
  std::string image = image_bytes(3 << 20);
  write(t / "source.sqfs", image);
  std::uint64_t id = image_identity(t / "source.sqfs");
  std::filesystem::create_directory(t / "node");
  write(t / "node/.x.sqfs.ferry-archive-7", image);  // sbcast's copy beside the target
  {
    ImageReceiver r(t / "node/x.sqfs", id);
    r.adopt(t / "node/.x.sqfs.ferry-archive-7");
    r.finish();
    EXPECT_EQ(r.bytes(), image.size());
    r.commit();
  }
  EXPECT_EQ(read(t / "node/x.sqfs"), image);
  EXPECT_EQ(left_in(t, "node"), std::vector<std::string>{"x.sqfs"});

  write(t / "node/.y.sqfs.ferry-archive-7", image.substr(0, image.size() - 1));  // truncated
  {
    ImageReceiver r(t / "node/y.sqfs", id);
    r.adopt(t / "node/.y.sqfs.ferry-archive-7");
    EXPECT_THROW(r.finish(), Error);
  }
  EXPECT_EQ(left_in(t, "node"), std::vector<std::string>{"x.sqfs"});
}

TEST(ImageReceiver, ATargetThatCannotTakeAFileIsRefusedBeforeAnyByte) {
  TempDir t;
  std::filesystem::create_directories(t / "node/x.sqfs");
  try {
    ImageReceiver r(t / "node/x.sqfs", 1);
    ADD_FAILURE() << "a directory at the target was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.sqfs: is there and is not a file"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_directory(t / "node/x.sqfs"));
}
