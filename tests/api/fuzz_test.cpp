// Random and mutated garbage must produce either a parsed value or an
// ApiError — never a crash, hang or other exception type.
#include <gtest/gtest.h>

#include <random>

#include "api/rpc.h"

using namespace vmstack;
using namespace vmstack::api;

namespace {

template <class F>
void must_not_crash(F&& f, const std::string& input) {
  try {
    f(input);
  } catch (const ApiError&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-ApiError exception " << e.what() << " for input: " << input.substr(0, 200);
  }
}

std::string mutate(std::mt19937& rng, std::string s, const std::string& alphabet) {
  std::uniform_int_distribution<int> op(0, 3);
  int edits = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    std::size_t pos = rng() % s.size();
    char c = alphabet[rng() % alphabet.size()];
    switch (op(rng)) {
      case 0: s[pos] = c; break;
      case 1: s.insert(s.begin() + static_cast<long>(pos), c); break;
      case 2: s.erase(pos, 1 + rng() % 8); break;
      case 3: s = s.substr(0, pos); break;  // truncate
    }
  }
  return s;
}

std::string random_bytes(std::mt19937& rng, const std::string& alphabet) {
  std::string s(rng() % 200, '\0');
  for (auto& c : s) c = (rng() % 4 == 0) ? static_cast<char>(rng() & 0xFF) : alphabet[rng() % alphabet.size()];
  return s;
}

Value seed_value() {
  return Value(Struct{{"a", Value(Array{Value(1), Value("x<&>"), Value(2.5), Value(true), Value()})},
                      {"b", Value(Struct{{"c", Value(DateTime{12345})}})},
                      {"u", Value("\xC3\xA9")}});
}

}  // namespace

TEST(Fuzz, XmlRpcGarbage) {
  std::mt19937 rng(1234);
  const std::string alphabet = "<>/=\"'&;#x0123456789abcdefmethodCallNameparamsvaluestructmemberarraydataint "
                               "i4i8booleandoublestringnil![CDATA[]]?\n\t";
  std::vector<std::string> seeds = {
      xmlrpc::format_request("VM.get_record", {Value("OpaqueRef:1"), seed_value()}),
      xmlrpc::format_response(RpcResult::success(seed_value())),
      xmlrpc::format_response(RpcResult::failure(ApiError("X", {"y"}))),
  };
  for (int i = 0; i < 4000; ++i) {
    std::string in = (i % 4 == 0) ? random_bytes(rng, alphabet) : mutate(rng, seeds[rng() % seeds.size()], alphabet);
    must_not_crash([](const std::string& s) { xmlrpc::parse_request(s); }, in);
    must_not_crash([](const std::string& s) { xmlrpc::parse_response(s); }, in);
  }
}

TEST(Fuzz, JsonRpcGarbage) {
  std::mt19937 rng(5678);
  const std::string alphabet = "{}[]\":,\\u0123456789.eE+-truefalsenullmethodparamsidjsonrpc \n\t";
  RpcCall c;
  c.id = Value(1);
  std::vector<std::string> seeds = {
      jsonrpc::format_request("VM.get_record", {Value("OpaqueRef:1"), seed_value()}, 7),
      jsonrpc::format_response(c, RpcResult::success(seed_value())),
      jsonrpc::format_response(c, RpcResult::failure(ApiError("X", {"y"}))),
  };
  for (int i = 0; i < 4000; ++i) {
    std::string in = (i % 4 == 0) ? random_bytes(rng, alphabet) : mutate(rng, seeds[rng() % seeds.size()], alphabet);
    must_not_crash([](const std::string& s) { jsonrpc::parse_request(s); }, in);
    must_not_crash([](const std::string& s) { jsonrpc::parse_response(s); }, in);
  }
}

TEST(Fuzz, RandomValuesRoundTripThroughBothCodecs) {
  std::mt19937 rng(42);
  std::function<Value(int)> gen = [&](int depth) -> Value {
    switch (rng() % (depth > 4 ? 5 : 7)) {
      case 0: return Value(static_cast<int64_t>(rng()) - (1ll << 31));
      case 1: return Value(static_cast<double>(rng()) / 7.0);
      case 2: return Value(rng() % 2 == 0);
      case 3: {
        std::string s(rng() % 12, ' ');
        for (auto& ch : s) ch = "ab<&>\"'z\t\n\xC3\xA9"[rng() % 12];
        // keep the string valid UTF-8: drop a dangling lead byte
        for (std::size_t i = 0; i < s.size(); ++i)
          if (static_cast<unsigned char>(s[i]) == 0xC3) {
            if (i + 1 < s.size()) s[i + 1] = '\xA9';
            else s.pop_back();
          } else if (static_cast<unsigned char>(s[i]) == 0xA9 && (i == 0 || static_cast<unsigned char>(s[i - 1]) != 0xC3)) {
            s[i] = 'e';
          }
        return Value(s);
      }
      case 4: return Value();
      case 5: {
        Array a;
        for (int i = rng() % 4; i > 0; --i) a.push_back(gen(depth + 1));
        return Value(a);
      }
      default: {
        Struct s;
        for (int i = rng() % 4; i > 0; --i) s["k" + std::to_string(rng() % 100)] = gen(depth + 1);
        return Value(s);
      }
    }
  };
  for (int i = 0; i < 500; ++i) {
    Value v = gen(0);
    RpcCall c;
    c.id = Value(i);
    c.jsonrpc_v2 = i % 2;
    RpcResult j = jsonrpc::parse_response(jsonrpc::format_response(c, RpcResult::success(v)));
    ASSERT_TRUE(j.ok);
    EXPECT_EQ(j.value, v);
    RpcResult x = xmlrpc::parse_response(xmlrpc::format_response(RpcResult::success(v)));
    ASSERT_TRUE(x.ok);  // ints come back as strings; just check it parses
  }
}
