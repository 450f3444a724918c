#include "node/http_message.h"

#include <strings.h>

#include <algorithm>
#include <charconv>

namespace cellar::node {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Reads more bytes into `buf`. False at end of stream.
Result<bool> Fill(TlsStream& stream, std::string& buf, Deadline deadline) {
  char chunk[16 * 1024];
  ASSIGN_OR_RETURN(size_t n, stream.Read(chunk, sizeof(chunk), deadline));
  buf.append(chunk, n);
  return n > 0;
}

Result<size_t> ParseSize(std::string_view text, int base, std::string_view what) {
  text = Trim(text);
  size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument(fmt::format("bad {} \"{}\"", what, text));
  }
  return value;
}

// The chunked body at the start of `buf`, decoded into `body`; reads as needed.
Status ReadChunks(TlsStream& stream, std::string& buf, std::string& body, size_t max_body,
                  Deadline deadline) {
  for (;;) {
    size_t eol;
    while ((eol = buf.find("\r\n")) == std::string::npos) {
      if (buf.size() > 1024) return InvalidArgument("chunk size line too long");
      ASSIGN_OR_RETURN(bool more, Fill(stream, buf, deadline));
      if (!more) return InvalidArgument("truncated chunked body");
    }
    std::string_view line(buf.data(), eol);
    line = line.substr(0, line.find(';'));  // chunk extensions
    ASSIGN_OR_RETURN(size_t size, ParseSize(line, 16, "chunk size"));
    if (size > max_body || body.size() + size > max_body) {
      return Error(Code::kResourceExhausted, "body over {} bytes", max_body);
    }
    buf.erase(0, eol + 2);
    if (size == 0) {
      // Trailers, up to the blank line that ends the message.
      size_t end;
      while ((end = buf.find("\r\n")) != 0) {
        if (end != std::string::npos) {
          buf.erase(0, end + 2);
          continue;
        }
        if (buf.size() > 16 * 1024) return InvalidArgument("trailers too long");
        ASSIGN_OR_RETURN(bool more, Fill(stream, buf, deadline));
        if (!more) return InvalidArgument("truncated chunked body");
      }
      buf.erase(0, 2);
      return Status::Ok();
    }
    while (buf.size() < size + 2) {
      ASSIGN_OR_RETURN(bool more, Fill(stream, buf, deadline));
      if (!more) return InvalidArgument("truncated chunked body");
    }
    if (buf.compare(size, 2, "\r\n") != 0) return InvalidArgument("chunk not followed by CRLF");
    body.append(buf, 0, size);
    buf.erase(0, size + 2);
  }
}

}  // namespace

std::string_view HttpHead::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsNoCase(key, name)) return value;
  }
  return {};
}

Result<HttpHead> ParseHttpHead(std::string_view text) {
  HttpHead head;
  size_t eol = text.find("\r\n");
  head.start_line = std::string(text.substr(0, eol));
  if (head.start_line.empty()) return InvalidArgument("empty start line");
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 2);
    eol = text.find("\r\n");
    std::string_view line = text.substr(0, eol);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return InvalidArgument(fmt::format("bad header line \"{}\"", line.substr(0, 80)));
    }
    head.headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                              std::string(Trim(line.substr(colon + 1))));
  }
  return head;
}

Result<HttpMessage> ReadHttpMessage(TlsStream& stream, std::string& buffered,
                                    const HttpLimits& limits, bool body_until_close,
                                    Deadline deadline) {
  size_t end;
  while ((end = buffered.find("\r\n\r\n")) == std::string::npos) {
    if (buffered.size() > limits.max_head) {
      return Error(Code::kResourceExhausted, "head over {} bytes", limits.max_head);
    }
    ASSIGN_OR_RETURN(bool more, Fill(stream, buffered, deadline));
    if (!more) {
      if (buffered.empty()) return Error(Code::kAborted, "connection closed");
      return InvalidArgument("connection closed inside the head");
    }
  }
  if (end > limits.max_head) {
    return Error(Code::kResourceExhausted, "head over {} bytes", limits.max_head);
  }
  HttpMessage msg;
  ASSIGN_OR_RETURN(msg.head, ParseHttpHead(std::string_view(buffered).substr(0, end)));
  buffered.erase(0, end + 4);

  std::string_view coding = msg.head.Header("Transfer-Encoding");
  std::string_view length = msg.head.Header("Content-Length");
  if (!coding.empty()) {
    if (!EqualsNoCase(coding, "chunked")) {
      return InvalidArgument(fmt::format("unsupported Transfer-Encoding \"{}\"", coding));
    }
    RETURN_IF_ERROR(ReadChunks(stream, buffered, msg.body, limits.max_body, deadline));
    return msg;
  }
  if (!length.empty()) {
    ASSIGN_OR_RETURN(size_t size, ParseSize(length, 10, "Content-Length"));
    if (size > limits.max_body) {
      return Error(Code::kResourceExhausted, "body of {} bytes over {}", size, limits.max_body);
    }
    while (buffered.size() < size) {
      ASSIGN_OR_RETURN(bool more, Fill(stream, buffered, deadline));
      if (!more) return InvalidArgument("connection closed inside the body");
    }
    msg.body = buffered.substr(0, size);
    buffered.erase(0, size);
    return msg;
  }
  if (body_until_close) {
    for (;;) {
      if (buffered.size() > limits.max_body) {
        return Error(Code::kResourceExhausted, "body over {} bytes", limits.max_body);
      }
      ASSIGN_OR_RETURN(bool more, Fill(stream, buffered, deadline));
      if (!more) break;
    }
    msg.body = std::move(buffered);
    buffered.clear();
  }
  return msg;
}

}  // namespace cellar::node
