// A small, fully specified random generator (xoshiro256**, seeded through SplitMix64), so a seed
// gives the same stream on every platform and standard library. Strategies derive one stream per
// individual or sample from the request seed, which keeps results independent of thread count.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_RNG_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_RNG_H_

#include <cstdint>

namespace squeeze::search::internal {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The seed of stream (a, b) under a request seed, e.g. (generation, individual).
inline uint64_t StreamSeed(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t state = seed;
  uint64_t h = SplitMix64(state);
  state = h ^ (a * 0xd1b54a32d192ed03ULL);
  h = SplitMix64(state);
  state = h ^ (b * 0x8cb92ba72f3d8dd7ULL);
  return SplitMix64(state);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), n ≥ 1 (Lemire's multiply-shift with rejection).
  uint32_t Uniform(uint32_t n) {
    uint64_t m = (Next() >> 32) * n;
    uint32_t low = static_cast<uint32_t>(m);
    if (low < n) {
      const uint32_t threshold = static_cast<uint32_t>(-n) % n;
      while (low < threshold) {
        m = (Next() >> 32) * n;
        low = static_cast<uint32_t>(m);
      }
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // Uniform in [0, 1).
  double UniformDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_RNG_H_
