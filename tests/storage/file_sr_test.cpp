// The file SR driver against real qemu-img in a temp directory.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/uuid.h"
#include "storage/file_sr.h"

using namespace vmstack;
using namespace vmstack::storage;
namespace fs = std::filesystem;

namespace {

struct TempSr {
  fs::path dir = fs::temp_directory_path() / ("vmstack-sr-" + make_uuid());
  SrContext ctx{make_uuid(), Struct{{"location", dir.string()}}};
  ~TempSr() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::vector<std::string> error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e.description();
  }
  return {};
}

}  // namespace

TEST(FileSr, CreatesDiskImagesItsOwnWay) {
  TempSr sr;
  FileSr drv;
  drv.create(sr.ctx);
  drv.attach(sr.ctx);
  struct stat st{};
  ASSERT_EQ(::stat(sr.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "guest disks are private";

  auto uuid = make_uuid();
  auto img = drv.vdi_create(sr.ctx, uuid, int64_t{64} << 20, VdiKind::disk);
  EXPECT_EQ(img.location, uuid + ".qcow2") << "a file name, never a path";
  EXPECT_EQ(img.format, "qcow2");
  EXPECT_EQ(img.virtual_size, int64_t{64} << 20);
  EXPECT_GT(img.physical_utilisation, 0);
  EXPECT_LT(img.physical_utilisation, int64_t{1} << 20) << "qcow2 is thin";
  auto src = drv.vdi_source(sr.ctx, img.location);
  EXPECT_EQ(src.path, (sr.dir / img.location).string());
  EXPECT_EQ(src.format, "qcow2");
  ASSERT_EQ(::stat(src.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The size comes from the image itself (its qcow2 header).
  EXPECT_EQ(drv.vdi_stat(sr.ctx, img.location).virtual_size, int64_t{64} << 20);

  auto usage = drv.usage(sr.ctx);
  EXPECT_GT(usage.physical_size, 0);
  EXPECT_GE(usage.physical_utilisation, img.physical_utilisation);

  // A copy is a full image of its own, the same size; a clone too (for now).
  auto copy = drv.vdi_copy(sr.ctx, img.location, sr.ctx, make_uuid());
  EXPECT_NE(copy.location, img.location);
  EXPECT_EQ(copy.virtual_size, img.virtual_size);
  EXPECT_TRUE(fs::exists(sr.dir / copy.location));
  auto clone = drv.vdi_clone(sr.ctx, img.location, make_uuid());
  EXPECT_TRUE(fs::exists(sr.dir / clone.location));

  drv.vdi_destroy(sr.ctx, copy.location);
  EXPECT_FALSE(fs::exists(sr.dir / copy.location));
  drv.vdi_destroy(sr.ctx, copy.location);  // already gone: fine
}

TEST(FileSr, SuspendImagesAreRawFilesTheHypervisorFills) {
  TempSr sr;
  FileSr drv;
  drv.create(sr.ctx);
  auto img = drv.vdi_create(sr.ctx, make_uuid(), 0, VdiKind::suspend_image);
  EXPECT_EQ(img.format, "raw");
  auto path = drv.vdi_source(sr.ctx, img.location).path;
  std::ofstream(path) << std::string(4096, 's');
  auto st = drv.vdi_stat(sr.ctx, img.location);
  EXPECT_EQ(st.virtual_size, 4096);
}

TEST(FileSr, RefusesLocationsThatAreNotItsImages) {
  TempSr sr;
  FileSr drv;
  drv.create(sr.ctx);
  for (std::string bad : {"../../etc/shadow", "/etc/shadow", "x/y.qcow2", ".hidden.qcow2", "notes.txt", ""}) {
    auto e = error_of([&] { drv.vdi_source(sr.ctx, bad); });
    ASSERT_FALSE(e.empty()) << bad;
    EXPECT_EQ(e[0], "SR_BACKEND_FAILURE") << bad;
    EXPECT_FALSE(error_of([&] { drv.vdi_destroy(sr.ctx, bad); }).empty()) << bad;
  }
  // Failures carry the tool's own words: SR_BACKEND_FAILURE [what, stdout, stderr].
  auto missing = SrContext{"x", Struct{{"location", (sr.dir / "nope" / "deeper").string()}}};
  auto e = error_of([&] { drv.vdi_create(missing, make_uuid(), int64_t{1} << 20, VdiKind::disk); });
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0], "SR_BACKEND_FAILURE");
  EXPECT_EQ(e[1].rfind("qemu-img create failed", 0), 0u) << e[1];
  EXPECT_FALSE(e[3].empty()) << "qemu-img's stderr";
  EXPECT_EQ(error_of([&] { drv.attach(missing); }).at(0), "SR_BACKEND_FAILURE");
  EXPECT_EQ(error_of([&] { drv.attach(SrContext{"y", Struct{}}); }).at(0), "SR_BACKEND_FAILURE");
  EXPECT_EQ(error_of([&] { drv.vdi_create(sr.ctx, make_uuid(), 0, VdiKind::disk); }).at(0), "INVALID_VALUE");
}

TEST(SrDrivers, ChosenBySrType) {
  SrDrivers d;
  d.add(std::make_unique<FileSr>());
  EXPECT_EQ(d.get("file").type(), "file");
  EXPECT_EQ(error_of([&] { d.get("lvm"); }), (std::vector<std::string>{"SR_UNKNOWN_DRIVER", "lvm"}));
}
