// Error-path assertions: bad input must stop with a ptune::Error whose
// message names what was wrong (the file, line, key or label).
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "framework/core/error.h"

namespace ptune::testing {

// The message of the ptune::Error that f throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ptune::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Runs fn, expecting a ptune::Error whose message holds every needle.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no ptune::Error thrown";
  } catch (const ptune::Error& e) {
    const std::string what = e.what();
    for (const std::string& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
  }
}

}  // namespace ptune::testing
