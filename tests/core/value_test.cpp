#include <gtest/gtest.h>

#include "core/error.h"
#include "core/uuid.h"
#include "core/value.h"

using namespace vmstack;

TEST(Value, IntAcceptsDecimalStringsAsXenApiSendsThem) {
  EXPECT_EQ(Value("268435456").as_int(), 268435456);
  EXPECT_EQ(Value(int64_t{-5}).as_int(), -5);
  EXPECT_THROW(Value("12abc").as_int(), ApiError);
  EXPECT_THROW(Value("").as_int(), ApiError);
}

TEST(Value, WrongTypeIsAnApiErrorNotACrash) {
  try {
    Value(Array{}).as_string();
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), "FIELD_TYPE_ERROR");
  }
}

TEST(Value, StructLookupOfMissingKeyIsNil) {
  Value v(Struct{{"a", 1}});
  EXPECT_EQ(v["a"].as_int(), 1);
  EXPECT_TRUE(v["b"].is_nil());
  const Value three(3);
  EXPECT_TRUE(three["x"].is_nil());
}

TEST(Value, DisplayLikeXe) {
  Value m(Struct{{"a", "1"}, {"b", "2"}});
  EXPECT_EQ(m.to_display(), "a: 1; b: 2");
  EXPECT_EQ(Value(Array{"x", "y"}).to_display(), "x; y");
}

TEST(DateTime, RoundTrip) {
  DateTime d{1795431495};
  DateTime back;
  ASSERT_TRUE(DateTime::parse(d.iso8601(), back));
  EXPECT_EQ(back, d);
  EXPECT_FALSE(DateTime::parse("yesterday", back));
}

// Found by fuzzing: year 262 came out as "2621123T...", which nothing parses.
TEST(DateTime, AlwaysFourYearDigits) {
  DateTime d;
  ASSERT_TRUE(DateTime::parse("02621123T10:58:15Z", d));
  EXPECT_EQ(d.iso8601(), "02621123T10:58:15Z");
  DateTime back;
  ASSERT_TRUE(DateTime::parse(d.iso8601(), back));
  EXPECT_EQ(back, d);
  ASSERT_TRUE(DateTime::parse("00000101T00:00:00Z", d));
  EXPECT_EQ(d.iso8601(), "00000101T00:00:00Z");
  // Beyond what the form can hold: its ends, never a malformed date.
  EXPECT_EQ(DateTime{INT64_MAX}.iso8601(), "99991231T23:59:59Z");
  EXPECT_EQ(DateTime{INT64_MIN}.iso8601(), "00000101T00:00:00Z");
}

TEST(Uuid, FormatAndUniqueness) {
  auto a = make_uuid(), b = make_uuid();
  EXPECT_TRUE(looks_like_uuid(a));
  EXPECT_NE(a, b);
  EXPECT_EQ(a[14], '4');
  EXPECT_FALSE(looks_like_uuid("not-a-uuid"));
  EXPECT_EQ(make_ref().rfind("OpaqueRef:", 0), 0u);
}
