#include "ivf.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "kernels.h"

namespace hs {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

template <typename F>
void parallel_for(int tasks, int threads, F&& f) {
  const int t = std::max(1, std::min(threads, tasks));
  if (t == 1) {
    for (int i = 0; i < tasks; i++) f(i);
    return;
  }
  std::atomic<int> next{0};
  auto run = [&]() {
    for (int i = next.fetch_add(1); i < tasks; i = next.fetch_add(1)) f(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (int i = 0; i < t - 1; i++) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
}

namespace {

// The best `cap` (score, row) pairs seen: a min-heap on score, so the worst is on top.
class TopK {
 public:
  explicit TopK(int cap) : cap_(cap) { heap_.reserve(cap); }
  float threshold() const { return static_cast<int>(heap_.size()) < cap_ ? kNegInf : heap_.front().first; }
  void push(float score, int64_t row) {
    if (static_cast<int>(heap_.size()) < cap_) {
      heap_.emplace_back(score, row);
      std::push_heap(heap_.begin(), heap_.end(), Worse());
    } else if (score > heap_.front().first) {
      std::pop_heap(heap_.begin(), heap_.end(), Worse());
      heap_.back() = {score, row};
      std::push_heap(heap_.begin(), heap_.end(), Worse());
    }
  }
  // Best first.
  std::vector<std::pair<float, int64_t>> sorted() {
    auto out = heap_;
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    return out;
  }
  void clear() { heap_.clear(); }
  const std::vector<std::pair<float, int64_t>>& items() const { return heap_; }

 private:
  struct Worse {
    bool operator()(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) const {
      return a.first > b.first;
    }
  };
  int cap_;
  std::vector<std::pair<float, int64_t>> heap_;
};

// One block of a probed list: its index in the codes, its first entry and its rows (≤ 16).
struct BlockRun {
  int64_t block;
  int64_t entry;
  int rows;
};

void write_result(TopK& top, int k, int32_t* rows, float* scores) {
  auto best = top.sorted();
  for (int i = 0; i < k; i++) {
    const bool has = i < static_cast<int>(best.size());
    rows[i] = has ? static_cast<int32_t>(best[i].second) : -1;
    scores[i] = has ? best[i].first : kNegInf;
  }
}

// Integer-domain approximate scores of `nq` quantised queries (steps `steps`) against the
// centroid codes: out[q * nlist + l] (for kL2, 2·q·c − ‖c‖² up to a per-query constant).
void centroid_scores(const CentroidCodes& c, Score score, const int8_t* queries, const float* steps, int nq,
                     float* out) {
  const Kernels& K = kernels();
  const size_t block_bytes = static_cast<size_t>(c.dpad) * kBlock;
  int32_t ints[kTileQueries * kBlock];
  for (int b = 0; b * kBlock < c.nlist; b++) {
    const int base = b * kBlock;
    const int count = std::min(kBlock, c.nlist - base);
    for (int q0 = 0; q0 < nq; q0 += kTileQueries) {
      const int n = std::min(kTileQueries, nq - q0);
      K.block_u8s8(c.codes.data() + b * block_bytes, queries + static_cast<size_t>(q0) * c.dpad, n, c.dpad, ints, nullptr);
      for (int j = 0; j < n; j++)
        for (int r = 0; r < count; r++) {
          const float dot = steps[q0 + j] * static_cast<float>(ints[j * kBlock + r]);
          out[static_cast<size_t>(q0 + j) * c.nlist + base + r] = score == Score::kL2 ? 2 * dot - c.norms[base + r] : dot;
        }
    }
  }
}

}  // namespace

void squared_norms(const float* x, int64_t n, int dim, float* out) {
  const Kernels& K = kernels();
  for (int64_t i = 0; i < n; i++) out[i] = K.dot_f32(x + i * dim, x + i * dim, dim);
}

float quantize_query(const float* q, int dim, int dpad, const float* scale, int8_t* out) {
  float wmax = 0;
  for (int d = 0; d < dim; d++) wmax = std::max(wmax, std::fabs(q[d] * scale[d]));
  const float step = wmax > 0 ? wmax / 127.0f : 1.0f;
  std::fill(out, out + dpad, 0);
  for (int d = 0; d < dim; d++) out[d] = static_cast<int8_t>(std::nearbyint(q[d] * scale[d] / step));
  return step;
}

CentroidCodes encode_centroids(const float* centroids, int nlist, int dim, const float* scale, const float* offset) {
  CentroidCodes c;
  c.nlist = nlist;
  c.dpad = (dim + 3) / 4 * 4;
  const int32_t offsets[2] = {0, nlist};
  const int32_t blocks[2] = {0, (nlist + kBlock - 1) / kBlock};
  c.codes.resize(static_cast<size_t>(blocks[1]) * c.dpad * kBlock);
  encode(centroids, CodeLayout{dim, c.dpad, 1, offsets, blocks}, scale, offset, 1, c.codes.data());
  // The centroids as their codes decode: the norms match the scores the codes give.
  c.norms.resize(nlist);
  for (int l = 0; l < nlist; l++) {
    double s = 0;
    for (int d = 0; d < dim; d++) {
      const int r = l % kBlock;
      const uint8_t code = c.codes[static_cast<size_t>(l / kBlock) * c.dpad * kBlock + (d / 4) * 64 + r * 4 + d % 4];
      const double v = offset[d] + scale[d] * code;
      s += v * v;
    }
    c.norms[l] = static_cast<float>(s);
  }
  return c;
}

void assign(const float* x, int64_t n, int dim, const float* centroids, int nlist, Score score, const float* scale,
            const float* offset, int threads, int32_t* labels) {
  const CentroidCodes c = encode_centroids(centroids, nlist, dim, scale, offset);
  // For kL2 the codes give 2·x·c up to a per-row constant: offsets enter as Σ x_d·offset_d, the
  // same for every centroid, so the argmax is right without it.
  constexpr int kChunk = 64;
  const int tasks = static_cast<int>((n + kChunk - 1) / kChunk);
  parallel_for(tasks, threads, [&](int t) {
    std::vector<float> sc(static_cast<size_t>(kChunk) * nlist);
    std::vector<int8_t> qs(static_cast<size_t>(kChunk) * c.dpad);
    float steps[kChunk];
    const int64_t begin = static_cast<int64_t>(t) * kChunk;
    const int nq = static_cast<int>(std::min<int64_t>(kChunk, n - begin));
    for (int j = 0; j < nq; j++) steps[j] = quantize_query(x + (begin + j) * dim, dim, c.dpad, scale, qs.data() + static_cast<size_t>(j) * c.dpad);
    centroid_scores(c, score, qs.data(), steps, nq, sc.data());
    for (int j = 0; j < nq; j++) {
      const float* s = sc.data() + static_cast<size_t>(j) * nlist;
      labels[begin + j] = static_cast<int32_t>(std::max_element(s, s + nlist) - s);
    }
  });
}

int64_t lloyd_step(const float* x, int64_t n, int dim, float* c, int nlist, Score score, uint64_t seed,
                   const float* scale, const float* offset, int threads, int32_t* labels) {
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  auto rnd = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::vector<int32_t> previous(labels, labels + n);
  assign(x, n, dim, c, nlist, score, scale, offset, threads, labels);
  int64_t moved = 0;
  for (int64_t i = 0; i < n; i++) moved += previous[i] != labels[i];
  std::vector<double> sums(static_cast<size_t>(nlist) * dim, 0.0);
  std::vector<int64_t> counts(nlist, 0);
  for (int64_t i = 0; i < n; i++) {
    double* s = sums.data() + static_cast<size_t>(labels[i]) * dim;
    const float* v = x + i * dim;
    for (int d = 0; d < dim; d++) s[d] += v[d];
    counts[labels[i]]++;
  }
  for (int l = 0; l < nlist; l++) {
    float* cl = c + static_cast<size_t>(l) * dim;
    if (counts[l] == 0) {
      const int big = static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());
      const float* cb = c + static_cast<size_t>(big) * dim;
      for (int d = 0; d < dim; d++) {
        const float eps = (static_cast<float>(rnd() % 2001) / 1000.0f - 1.0f) * 1e-3f;
        cl[d] = cb[d] * (1 + eps);
      }
      counts[l] = counts[big] / 2;
      counts[big] -= counts[l];
      continue;
    }
    const double* s = sums.data() + static_cast<size_t>(l) * dim;
    for (int d = 0; d < dim; d++) cl[d] = static_cast<float>(s[d] / static_cast<double>(counts[l]));
    if (score == Score::kDot) {
      double norm = 0;
      for (int d = 0; d < dim; d++) norm += static_cast<double>(cl[d]) * cl[d];
      if (norm > 0) {
        const float inv = static_cast<float>(1.0 / std::sqrt(norm));
        for (int d = 0; d < dim; d++) cl[d] *= inv;
      }
    }
  }
  return moved;
}

void encode(const float* x, const CodeLayout& L, const float* scale, const float* offset, int threads,
            uint8_t* codes) {
  const size_t block_bytes = static_cast<size_t>(L.dpad) * kBlock;
  parallel_for(L.nlist, threads, [&](int l) {
    const int64_t first = L.offsets[l];
    const int64_t count = L.offsets[l + 1] - first;
    uint8_t* base = codes + static_cast<size_t>(L.blocks[l]) * block_bytes;
    std::memset(base, 0, static_cast<size_t>(L.blocks[l + 1] - L.blocks[l]) * block_bytes);
    for (int64_t i = 0; i < count; i++) {
      const float* v = x + (first + i) * L.dim;
      uint8_t* block = base + static_cast<size_t>(i / kBlock) * block_bytes;
      const int r = static_cast<int>(i % kBlock);
      for (int d = 0; d < L.dim; d++) {
        const float q = std::nearbyint((v[d] - offset[d]) / scale[d]);
        block[(d / 4) * 64 + r * 4 + d % 4] = static_cast<uint8_t>(std::clamp(q, 0.0f, 255.0f));
      }
    }
  });
}

void ivf_search(const IvfView& ivf, const float* queries, int batch, const SearchParams& p, int32_t* rows,
                float* scores) {
  const Kernels& K = kernels();
  const CodeLayout& L = ivf.layout;
  const int dim = L.dim;
  const int nprobe = std::min(p.nprobe, L.nlist);
  const size_t block_bytes = static_cast<size_t>(L.dpad) * kBlock;
  // Tasks of up to kTileQueries queries: they share the pass over the centroids.
  const int tasks = (batch + kTileQueries - 1) / kTileQueries;
  parallel_for(tasks, p.threads, [&](int t) {
    const int q0 = t * kTileQueries;
    const int nq = std::min(kTileQueries, batch - q0);
    // The tile's queries in the codes' terms, once: for the centroids and for the lists.
    std::vector<int8_t> qi(static_cast<size_t>(nq) * L.dpad);
    float steps[kTileQueries];
    for (int j = 0; j < nq; j++)
      steps[j] = quantize_query(queries + static_cast<size_t>(q0 + j) * dim, dim, L.dpad, ivf.scale, qi.data() + static_cast<size_t>(j) * L.dpad);
    std::vector<float> cs(static_cast<size_t>(nq) * L.nlist);
    centroid_scores(*ivf.centroids, ivf.score, qi.data(), steps, nq, cs.data());
    TopK lists(nprobe);
    std::vector<BlockRun> runs;
    TopK cand(std::max(p.candidates, p.k));
    TopK best(p.k);
    int32_t ints[kBlock];
    for (int j = 0; j < nq; j++) {
      const int q = q0 + j;
      const float* qv = queries + static_cast<size_t>(q) * dim;
      const int8_t* qj = qi.data() + static_cast<size_t>(j) * L.dpad;
      const float step = steps[j];
      // The lists to probe: the best `nprobe` centroid scores (a small heap: one compare per list).
      const float* s = cs.data() + static_cast<size_t>(j) * L.nlist;
      lists.clear();
      for (int l = 0; l < L.nlist; l++)
        if (s[l] > lists.threshold()) lists.push(s[l], l);
      const auto& probed = lists.items();
      cand.clear();
      // The probed lists' blocks in one run, so each block's scan prefetches the block two ahead,
      // across list boundaries too (the codes stream from memory: they are the hot tier's bulk).
      runs.clear();
      for (const auto& item : probed) {
        const int l = static_cast<int>(item.second);
        const int64_t first = L.offsets[l];
        const int64_t count = L.offsets[l + 1] - first;
        for (int64_t i = 0; i < count; i += kBlock)
          runs.push_back({L.blocks[l] + i / kBlock, first + i, static_cast<int>(std::min<int64_t>(kBlock, count - i))});
      }
      constexpr size_t kAhead = 2;
      for (size_t bi = 0; bi < runs.size(); bi++) {
        const BlockRun& run = runs[bi];
        const uint8_t* ahead = bi + kAhead < runs.size() ? ivf.codes + runs[bi + kAhead].block * block_bytes : nullptr;
        K.block_u8s8(ivf.codes + run.block * block_bytes, qj, 1, L.dpad, ints, ahead);
        const float floor = cand.threshold();
        for (int r = 0; r < run.rows; r++) {
          const int64_t e = run.entry + r;
          float a = step * static_cast<float>(ints[r]);
          if (ivf.score == Score::kL2) a = 2 * a - ivf.norms[e];
          if (a <= floor || ivf.bias[e] != 0 || (p.mask && p.mask[e] != 0)) continue;
          cand.push(a, e);
        }
      }
      // Exact scores for the candidates, four rows at a time.
      best.clear();
      const auto& items = cand.items();
      float tile[4];
      for (size_t c = 0; c < items.size(); c += 4) {
        const int nb = static_cast<int>(std::min<size_t>(4, items.size() - c));
        for (int b = 0; b < nb; b++) tile[b] = K.dot_f32(qv, ivf.vectors + items[c + b].second * dim, dim);
        for (int b = 0; b < nb; b++) {
          const int64_t e = items[c + b].second;
          best.push(ivf.score == Score::kL2 ? 2 * tile[b] - ivf.norms[e] : tile[b], e);
        }
      }
      write_result(best, p.k, rows + static_cast<size_t>(q) * p.k, scores + static_cast<size_t>(q) * p.k);
    }
  });
}

void exact_search(const float* x, const float* norms, int64_t n, int dim, Score score, const float* bias,
                  const float* mask, const float* queries, int batch, int k, int threads, int32_t* rows,
                  float* scores) {
  const Kernels& K = kernels();
  // Row ranges per task; each task keeps a top-k per query, merged at the end.
  constexpr int64_t kRange = 16384;
  const int tasks = static_cast<int>(std::max<int64_t>(1, (n + kRange - 1) / kRange));
  std::vector<std::vector<TopK>> partial(tasks, std::vector<TopK>(batch, TopK(k)));
  parallel_for(tasks, threads, [&](int t) {
    const int64_t begin = static_cast<int64_t>(t) * kRange;
    const int64_t end = std::min(n, begin + kRange);
    auto& tops = partial[t];
    float tile[16];
    int64_t live[4];
    for (int64_t i = begin; i < end;) {
      // The next (up to) four rows that may be returned.
      int nb = 0;
      for (; i < end && nb < 4; i++) {
        if ((bias && bias[i] != 0) || (mask && mask[i] != 0)) continue;
        live[nb++] = i;
      }
      if (nb == 0) continue;
      const bool adjacent = nb == 4 && live[3] - live[0] == 3;
      for (int q0 = 0; q0 < batch; q0 += 4) {
        const int na = std::min(4, batch - q0);
        const float* qs = queries + static_cast<size_t>(q0) * dim;
        // tile[a * 4 + b]: query q0 + a against row live[b].
        if (adjacent) {
          K.dot_f32_4xn(qs, na, x + live[0] * dim, 4, dim, tile);
        } else {
          float col[4];
          for (int b = 0; b < nb; b++) {
            K.dot_f32_4xn(qs, na, x + live[b] * dim, 1, dim, col);
            for (int a = 0; a < na; a++) tile[a * 4 + b] = col[a];
          }
        }
        for (int a = 0; a < na; a++)
          for (int b = 0; b < nb; b++) {
            const float dot = tile[a * 4 + b];
            tops[q0 + a].push(score == Score::kL2 ? 2 * dot - norms[live[b]] : dot, live[b]);
          }
      }
    }
  });
  for (int q = 0; q < batch; q++) {
    TopK merged(k);
    for (int t = 0; t < tasks; t++)
      for (const auto& [s, r] : partial[t][q].items()) merged.push(s, r);
    write_result(merged, k, rows + static_cast<size_t>(q) * k, scores + static_cast<size_t>(q) * k);
  }
}

}  // namespace hs
