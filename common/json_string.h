// JSON string literals: the one escaper Cellar's hand-written JSON goes through (log lines,
// admission responses, JSON patches), so every writer escapes the same way.
#pragma once

#include <string>
#include <string_view>

namespace cellar {

// Appends `text` escaped for the inside of a JSON string: quote, backslash and every
// control character (U+0000..U+001F) escaped; other bytes, UTF-8 included, as they are.
void AppendJsonEscaped(std::string& out, std::string_view text);

// `text` as a JSON string literal, quotes included.
std::string JsonString(std::string_view text);

}  // namespace cellar
