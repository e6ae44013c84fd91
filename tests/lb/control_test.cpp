// Control socket: request/reply, socket file handling, bad input.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <utility>  // before Asio (boost 1.74)
#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "lb/control.h"
#include "lb_test_util.h"

using namespace vmstack::lb;
using namespace lbtest;

namespace {

// An io_context running on its own thread for the test's duration.
struct IoThread {
  boost::asio::io_context io;
  std::thread t;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  IoThread() : guard(std::make_unique<decltype(guard)::element_type>(io.get_executor())) {
    t = std::thread([this] { io.run(); });
  }
  ~IoThread() {
    guard.reset();
    io.stop();
    t.join();
  }
  template <class F>
  void on_io(F f) {  // run f on the io thread and wait
    std::promise<void> done;
    boost::asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
};

}  // namespace

TEST(Control, RequestAndReply) {
  TempDir d;
  IoThread io;
  std::string path = (d.path / "sub" / "ctl.sock").string();
  ControlServer srv(io.io, path, [](const nlohmann::json& req) {
    return nlohmann::json{{"rc", 3}, {"out", req.at("cmd").dump()}, {"err", "e\n"}};
  });
  srv.start();
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "only the owner may change rules";
  ControlReply r = control_call(path, {{"cmd", {{"op", "list"}}}});
  EXPECT_EQ(r.rc, 3);
  EXPECT_EQ(r.out, R"({"op":"list"})");
  EXPECT_EQ(r.err, "e\n");
  // A large request (a big restore) goes through too.
  std::string big(2 << 20, 'x');
  r = control_call(path, {{"cmd", big}});
  EXPECT_EQ(r.out.size(), big.size() + 2);
  io.on_io([&] { srv.stop(); });
  EXPECT_FALSE(std::filesystem::exists(path)) << "socket file left behind";
}

TEST(Control, BadRequestsGetAnErrorReply) {
  TempDir d;
  IoThread io;
  std::string path = (d.path / "ctl.sock").string();
  ControlServer srv(io.io, path, [](const nlohmann::json& req) {
    if (!req.contains("cmd")) throw std::runtime_error("no cmd");
    return nlohmann::json{{"rc", 0}};
  });
  srv.start();
  for (const std::string raw : {"not json\n", "{\"x\":1}\n"}) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    set_timeouts(fd.get(), 3000);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_TRUE(send_all(fd.get(), raw));
    auto reply = nlohmann::json::parse(read_up_to(fd.get(), 1 << 16));
    EXPECT_EQ(reply["rc"], 2) << raw;
    EXPECT_NE(reply["err"].get<std::string>().find("bad request"), std::string::npos);
  }
  io.on_io([&] { srv.stop(); });
}

TEST(Control, StaleSocketIsReplacedLiveOneIsNot) {
  TempDir d;
  IoThread io;
  std::string path = (d.path / "ctl.sock").string();
  {
    // What a killed daemon leaves: a socket file nobody listens on.
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }
  auto h = [](const nlohmann::json&) { return nlohmann::json{{"rc", 0}, {"out", "first"}}; };
  ControlServer first(io.io, path, h);
  first.start();
  EXPECT_EQ(control_call(path, {{"cmd", 1}}).out, "first");
  ControlServer second(io.io, path, h);
  try {
    second.start();
    FAIL() << "a second daemon took over a live socket";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another vmstack-lbd"), std::string::npos) << e.what();
  }
  EXPECT_EQ(control_call(path, {{"cmd", 1}}).out, "first");
  io.on_io([&] { first.stop(); });

  std::string plain = (d.path / "plain").string();
  std::ofstream(plain) << "not a socket";
  ControlServer third(io.io, plain, h);
  EXPECT_THROW(third.start(), std::runtime_error);
  EXPECT_TRUE(std::filesystem::exists(plain)) << "a regular file must never be removed";
}

TEST(Control, UnreachableDaemonIsAnError) {
  TempDir d;
  EXPECT_THROW(control_call((d.path / "none.sock").string(), {{"cmd", 1}}, 1000),
               std::runtime_error);
}
