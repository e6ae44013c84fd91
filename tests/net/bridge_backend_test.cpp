// The Linux bridge backend in a network namespace of the test's own.
#include <gtest/gtest.h>

#include "net/bridge_backend.h"
#include "net/netlink.h"
#include "netns_guard.h"

using namespace vmstack;
using namespace vmstack::net;

TEST(BridgeBackend, BridgesAndTapsForVifs) {
  test::NetnsGuard ns;
  BridgeBackend b;
  EXPECT_FALSE(b.bridge_exists("xenbr0"));
  b.bridge_create("xenbr0", 1500);
  b.bridge_create("xenbr0", 1500);  // idempotent
  EXPECT_TRUE(b.bridge_exists("xenbr0"));
  EXPECT_EQ(link_info("xenbr0").kind, "bridge");
  EXPECT_TRUE(link_info("xenbr0").up);

  VifPlug v{"0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11", "0", "xenbr0", 9000};
  auto tap = b.vif_plug(v);
  EXPECT_EQ(tap, "vif0f6e5b0e.0");
  EXPECT_EQ(tap, tap_name(v.vm_uuid, v.device));
  auto info = link_info(tap);
  EXPECT_TRUE(info.tap);
  EXPECT_EQ(info.master, "xenbr0");
  EXPECT_TRUE(info.up);
  EXPECT_EQ(info.mtu, 9000u);
  EXPECT_EQ(b.vif_plug(v), tap) << "plugging again is harmless";

  b.vif_unplug(tap);
  EXPECT_FALSE(link_exists(tap));
  b.vif_unplug(tap);  // already gone: fine
  b.bridge_destroy("xenbr0");
  EXPECT_FALSE(b.bridge_exists("xenbr0"));
}

TEST(BridgeBackend, ErrorsNameWhatIsMissing) {
  test::NetnsGuard ns;
  BridgeBackend b;
  try {
    b.vif_plug({"0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11", "1", "xenbr7", 0});
    ADD_FAILURE() << "a VIF was plugged into a missing bridge";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("xenbr7"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(link_exists(tap_name("0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11", "1")));
}

TEST(TapName, FitsLinuxInterfaceNames) {
  EXPECT_EQ(tap_name("0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11", "12"), "vif0f6e5b0e.12");
  EXPECT_LE(tap_name("0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11", "999999").size(), 15u);
  EXPECT_EQ(tap_name("x", ""), "vif.0");
}
