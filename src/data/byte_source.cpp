// Plain / gzip / zstd input streams; see include/dtune/data/byte_source.h.
#include "dtune/data/byte_source.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/core/sha256.h"

namespace dtune {
namespace {

constexpr size_t kFileChunk = 1 << 20;  // raw bytes per fread

std::string recompress_hint(const std::string& path) {
  return str("; the file is damaged or was cut short (an interrupted download or copy?): fetch or compress ",
             path, " again");
}

}  // namespace

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
    default: return "none";
  }
}

struct ByteSource::File {
  std::FILE* f = nullptr;
  Sha256 hasher;
  ~File() {
    if (f != nullptr) std::fclose(f);
  }
};

ByteSource::ByteSource(std::string path, Compression compression)
    : path_(std::move(path)), compression_(compression), file_(std::make_unique<File>()) {
  file_->f = std::fopen(path_.c_str(), "rb");
  DTUNE_CHECK(file_->f != nullptr, path_, ": cannot open the input file (", std::strerror(errno), "); check --input");
  if (std::fseek(file_->f, 0, SEEK_END) == 0) {
    file_size_ = std::ftell(file_->f);
    std::rewind(file_->f);
  }
}

ByteSource::~ByteSource() = default;

size_t ByteSource::read_file(unsigned char* out, size_t n) {
  const size_t got = std::fread(out, 1, n, file_->f);
  DTUNE_CHECK(!std::ferror(file_->f), path_, ": read error (", std::strerror(errno), ")");
  file_->hasher.update(reinterpret_cast<const char*>(out), got);
  file_read_ += static_cast<int64_t>(got);
  return got;
}

const std::string& ByteSource::sha256() const {
  if (digest_.empty()) digest_ = file_->hasher.hex_digest();
  return digest_;
}

namespace {

class PlainSource final : public ByteSource {
 public:
  explicit PlainSource(const std::string& path) : ByteSource(path, Compression::kNone) {}
  size_t read(char* out, size_t n) override { return read_file(reinterpret_cast<unsigned char*>(out), n); }
};

// gzip through zlib's inflate (windowBits 15 + 32: gzip or zlib header). A file of several
// gzip members (`cat a.gz b.gz`) reads as their concatenation, as `gzip -d` does.
class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(const std::string& path) : ByteSource(path, Compression::kGzip), in_(kFileChunk) {
    DTUNE_CHECK(inflateInit2(&z_, 15 + 32) == Z_OK, path_, ": zlib: cannot initialise the decompressor");
  }
  ~GzipSource() override { inflateEnd(&z_); }

  size_t read(char* out, size_t n) override {
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out == n) {
      if (z_.avail_in == 0 && !eof_) {
        z_.avail_in = static_cast<uInt>(read_file(in_.data(), in_.size()));
        z_.next_in = in_.data();
        eof_ = z_.avail_in == 0;
      }
      if (eof_ && z_.avail_in == 0 && !in_stream_) return 0;  // the last member ended cleanly
      if (!in_stream_) {  // a new member starts (the first, or one after a finished member)
        DTUNE_CHECK(inflateReset(&z_) == Z_OK, path_, ": zlib: cannot reset the decompressor");
        in_stream_ = true;
      }
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_stream_ = false;
      } else if (rc == Z_BUF_ERROR) {  // no progress: only possible with no input left
        DTUNE_CHECK(!(eof_ && z_.avail_out == n), path_,
                    ": truncated gzip data (the file ends inside a compressed stream)", recompress_hint(path_));
      } else if (rc != Z_OK) {
        throw Error(str(path_, ": corrupt gzip data at byte ", file_bytes_read() - z_.avail_in, " of the file (zlib: ",
                        z_.msg != nullptr ? z_.msg : "error " + std::to_string(rc), ")", recompress_hint(path_)));
      }
    }
    return n - z_.avail_out;
  }

 private:
  z_stream z_{};
  std::vector<unsigned char> in_;
  bool in_stream_ = false;
  bool eof_ = false;
};

// zstd through ZSTD_decompressStream; several frames read as their concatenation.
class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path)
      : ByteSource(path, Compression::kZstd), dctx_(ZSTD_createDCtx()), in_(ZSTD_DStreamInSize()) {
    DTUNE_CHECK(dctx_ != nullptr, path_, ": zstd: cannot create the decompressor");
  }
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }

  size_t read(char* out, size_t n) override {
    ZSTD_outBuffer ob{out, n, 0};
    for (;;) {
      if (ib_.pos == ib_.size && !eof_) {
        ib_ = ZSTD_inBuffer{in_.data(), read_file(in_.data(), in_.size()), 0};
        eof_ = ib_.size == 0;
      }
      // With no input left this still flushes what the decoder holds back.
      const size_t in_before = ib_.pos, out_before = ob.pos;
      const size_t rc = ZSTD_decompressStream(dctx_, &ob, &ib_);
      if (ZSTD_isError(rc)) {
        throw Error(str(path_, ": corrupt zstd data near byte ", file_bytes_read() - static_cast<int64_t>(ib_.size - ib_.pos),
                        " of the file (zstd: ", ZSTD_getErrorName(rc), ")", recompress_hint(path_)));
      }
      // 0: a frame ended and is fully flushed. A call that moved nothing (at a frame boundary with
      // no input) returns a size hint, which says nothing about being inside a frame.
      if (rc == 0) in_frame_ = false;
      else if (ib_.pos > in_before || ob.pos > out_before) in_frame_ = true;
      if (ob.pos > 0) return ob.pos;
      if (eof_ && ib_.pos == ib_.size) {
        DTUNE_CHECK(!in_frame_, path_, ": truncated zstd data (the file ends inside a frame)", recompress_hint(path_));
        return 0;
      }
    }
  }

 private:
  ZSTD_DCtx* dctx_;
  std::vector<unsigned char> in_;
  ZSTD_inBuffer ib_{nullptr, 0, 0};
  bool in_frame_ = false;
  bool eof_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> ByteSource::open(const std::string& path) {
  unsigned char magic[4] = {0, 0, 0, 0};
  size_t got = 0;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    got = std::fread(magic, 1, sizeof magic, f);
    std::fclose(f);
  }  // an unopenable file: the constructor below reports it
  if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return std::make_unique<GzipSource>(path);
  if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    return std::make_unique<ZstdSource>(path);
  }
  return std::make_unique<PlainSource>(path);
}

}  // namespace dtune
