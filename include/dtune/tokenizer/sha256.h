// SHA-256 (FIPS 180-4) of a byte string, as lowercase hex; used to fingerprint tokenizer.json
// so that pretokenized data and checkpoints can record exactly which tokenizer made them.
#pragma once

#include <string>
#include <string_view>

namespace dtune {

// 64 lowercase hex characters, identical to Python's hashlib.sha256(data).hexdigest().
std::string sha256_hex(std::string_view data);

}  // namespace dtune
