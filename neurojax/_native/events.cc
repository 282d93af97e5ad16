// Event-driven synaptic propagation for XLA:CPU, registered through jax.ffi.
//
// One call adds, for every presynaptic neuron whose output is non-zero this step, its
// row of synapses (ELL layout: targets and weights padded to a common out-degree)
// into a post-side ring buffer. Work is one pass over the presynaptic outputs plus
// one add per synaptic event: the row loop that pure JAX cannot express without a
// data-dependent while loop, gathers and a scatter (see neurojax/connectivity/weights.py,
// which keeps the pure-JAX path for every platform and defines the semantics).
//
// All arrays carry a leading batch axis (size 1 when not batched) so one call serves
// a vmapped sweep. Shapes (T = float or double):
//   act      (B, n_pre)              T      presynaptic outputs this step
//   weights  (Bw,) or (Bw, n_pre, d) T      one weight per batch, or per synapse
//   targets  (Bt, n_pre, d)          int32  postsynaptic index; >= n_post is padding
//   delays   (Bd, n_pre, d) or empty T      per-synapse delays [ms], or none
//   buffer   (B, slots, n_post)      T      ring buffer (aliased with the result); an
//                                          unbatched one may be (slots, n_post)
//   step     (B,)                    int32  current step
// with Bw, Bt, Bd each 1 or B. The aliased ring buffer is taken at its own rank when
// unbatched: a reshape to (1, slots, n) between the loop-carried buffer and the call
// made XLA copy the whole buffer around every call (it does not alias through the
// bitcast; benchmarks/README.md, issue 15). Attributes: delay_steps (homogeneous delay in steps,
// used when delays is empty) and dt [ms].

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kBlock = 64;  // presynaptic neurons tested at once for activity

// Whether any of kBlock values is non-zero (-0.0 counts as zero, as in `act != 0`):
// OR of the bit patterns without the sign bit.
template <typename T>
bool BlockActive(const T* a) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits acc = 0;
  for (int64_t j = 0; j < kBlock; ++j) {
    Bits b;
    std::memcpy(&b, a + j, sizeof(T));
    acc |= b;
  }
  return (acc << 1) != 0;
}

// Whether any of kBlock bytes (a block of a boolean mask) is non-zero.
inline bool BytesActive(const uint8_t* m) {
  uint64_t acc = 0;
  for (int64_t j = 0; j < kBlock; j += 8) {
    uint64_t b;
    std::memcpy(&b, m + j, 8);
    acc |= b;
  }
  return acc != 0;
}

// The ring-buffer slot that a synapse of delay `delay` [ms] writes at step `now`, with
// the rounding of the pure-JAX `_slots` (half to even, at least one step): the forward
// and backward kernels must agree with it and with each other.
template <typename T>
inline int64_t DelaySlot(T delay, T dt, int64_t now, int64_t slots) {
  int64_t steps = static_cast<int64_t>(std::nearbyint(delay / dt));
  if (steps < 1) steps = 1;
  return (now + steps) % slots;
}

int64_t Leading(const ffi::AnyBuffer& b) {
  auto dims = b.dimensions();
  return dims.size() == 0 ? 1 : dims[0];
}

// A ring buffer's (batch, slots, n): rank 3, or rank 2 for one unbatched member.
struct Ring {
  int64_t batch, slots, n;
};

inline bool RingOf(ffi::Span<const int64_t> dims, Ring* ring) {
  if (dims.size() == 3) {
    *ring = {dims[0], dims[1], dims[2]};
  } else if (dims.size() == 2) {
    *ring = {1, dims[0], dims[1]};
  } else {
    return false;
  }
  return true;
}

// The synapses of a batch of networks in ELL rows (`targets`: (batch or 1, n_pre,
// width); `weights`: per synapse, same shape, or one per member; `delays`: per synapse
// or empty), as the forward and backward kernels read them: a leading size of 1 is
// shared by every batch member.
template <typename T>
struct SparseRows {
  int64_t n_pre, width, row_size;
  bool per_synapse_w, per_synapse_d;
  int64_t bw, bt, bd;
  const T* w_all;
  const int32_t* t_all;
  const T* d_all;

  SparseRows(const ffi::AnyBuffer& weights, const ffi::AnyBuffer& targets,
             const ffi::AnyBuffer& delays)
      : n_pre(targets.dimensions()[1]),
        width(targets.dimensions()[2]),
        row_size(n_pre * width),
        per_synapse_w(weights.dimensions().size() == 3),
        per_synapse_d(delays.element_count() > 0),
        bw(Leading(weights)),
        bt(Leading(targets)),
        bd(Leading(delays)),
        w_all(static_cast<const T*>(weights.untyped_data())),
        t_all(static_cast<const int32_t*>(targets.untyped_data())),
        d_all(static_cast<const T*>(delays.untyped_data())) {}

  const int32_t* targets_of(int64_t b) const { return t_all + (bt == 1 ? 0 : b) * row_size; }
  const T* weights_of(int64_t b) const {
    return w_all + (bw == 1 ? 0 : b) * (per_synapse_w ? row_size : 1);
  }
  const T* delays_of(int64_t b) const {  // nullptr: the projection's one delay
    return per_synapse_d ? d_all + (bd == 1 ? 0 : b) * row_size : nullptr;
  }
};

template <typename T>
void Deliver(const ffi::AnyBuffer& act, const ffi::AnyBuffer& weights,
             const ffi::AnyBuffer& targets, const ffi::AnyBuffer& delays,
             const ffi::AnyBuffer& step, ffi::Result<ffi::AnyBuffer>& out,
             int64_t delay_steps, double dt) {
  Ring ring;
  RingOf(out->dimensions(), &ring);
  const int64_t batch = ring.batch, slots = ring.slots, n_post = ring.n;
  const SparseRows<T> syn(weights, targets, delays);
  const int64_t n_pre = syn.n_pre, width = syn.width;
  const bool per_synapse_w = syn.per_synapse_w;

  const T* a_all = static_cast<const T*>(act.untyped_data());
  const int32_t* s_all = static_cast<const int32_t*>(step.untyped_data());
  T* buf_all = static_cast<T*>(out->untyped_data());
  const T dt_t = static_cast<T>(dt);

  for (int64_t b = 0; b < batch; ++b) {
    const T* a = a_all + b * n_pre;
    const int32_t* tgt = syn.targets_of(b);
    const T* w = syn.weights_of(b);
    const T* d = syn.delays_of(b);
    T* buf = buf_all + b * slots * n_post;
    const int64_t now = s_all[b];
    T* homogeneous = buf + ((now + delay_steps) % slots) * n_post;
    for (int64_t start = 0; start < n_pre; start += kBlock) {
      // Skip silent blocks with a branch-free test that the compiler vectorises:
      // spikes are sparse, and a compare-and-branch per neuron would cost more than
      // all of the synaptic adds (4 us against 0.3 us for 3200 neurons).
      const int64_t stop = start + kBlock < n_pre ? start + kBlock : n_pre;
      if (stop - start == kBlock && !BlockActive(a + start)) continue;
      for (int64_t j = start; j < stop; ++j) {
        const T aj = a[j];
        if (aj == T(0)) continue;
        const int32_t* row_t = tgt + j * width;
        if (d != nullptr) {
          const T* row_w = per_synapse_w ? w + j * width : nullptr;
          const T* row_d = d + j * width;
          for (int64_t k = 0; k < width; ++k) {
            const int32_t t = row_t[k];
            if (t < 0 || t >= n_post) continue;  // padding
            buf[DelaySlot(row_d[k], dt_t, now, slots) * n_post + t] +=
                (row_w ? row_w[k] : w[0]) * aj;
          }
        } else if (per_synapse_w) {
          const T* row_w = w + j * width;
          for (int64_t k = 0; k < width; ++k) {
            const int32_t t = row_t[k];
            if (t >= 0 && t < n_post) homogeneous[t] += row_w[k] * aj;
          }
        } else {
          const T value = w[0] * aj;
          for (int64_t k = 0; k < width; ++k) {
            const int32_t t = row_t[k];
            if (t >= 0 && t < n_post) homogeneous[t] += value;
          }
        }
      }
    }
  }
}

ffi::Error DeliverImpl(ffi::AnyBuffer act, ffi::AnyBuffer weights, ffi::AnyBuffer targets,
                       ffi::AnyBuffer delays, ffi::AnyBuffer buffer, ffi::AnyBuffer step,
                       ffi::Result<ffi::AnyBuffer> out, int64_t delay_steps, double dt) {
  Ring ring;
  if (!RingOf(out->dimensions(), &ring) || targets.dimensions().size() != 3 ||
      targets.element_type() != ffi::DataType::S32 || step.element_type() != ffi::DataType::S32) {
    return ffi::Error::InvalidArgument("neurojax_deliver_events: bad shapes or dtypes");
  }
  if (out->untyped_data() != buffer.untyped_data()) {
    std::memcpy(out->untyped_data(), buffer.untyped_data(), buffer.size_bytes());
  }
  switch (act.element_type()) {
    case ffi::DataType::F32:
      Deliver<float>(act, weights, targets, delays, step, out, delay_steps, dt);
      break;
    case ffi::DataType::F64:
      Deliver<double>(act, weights, targets, delays, step, out, delay_steps, dt);
      break;
    default:
      return ffi::Error::InvalidArgument("neurojax_deliver_events: float32 or float64 only");
  }
  return ffi::Error::Success();
}

// Procedural synapses (neurojax/connectivity/procedural.py, which defines the hash):
// the k targets of presynaptic neuron j are regenerated from (seed, j, 0..k-1) with
// the same 32-bit operations as the pure-JAX path, so both give identical synapses.
// Targets are drawn over the whole postsynaptic population (attribute n_post); the
// buffer may hold only a contiguous slice of it, [offset, offset + buffer width)
// (one device's neurons under jax.shard_map): synapses onto other neurons are skipped,
// so each device adds exactly its own synapses, in the order one device would.
uint32_t LowBias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  return x ^ (x >> 16);
}

template <typename T>
void DeliverProcedural(const ffi::AnyBuffer& act, const ffi::AnyBuffer& weight,
                       const ffi::AnyBuffer& seed, const ffi::AnyBuffer& offset,
                       const ffi::AnyBuffer& step, ffi::Result<ffi::AnyBuffer>& out, int64_t k,
                       bool exclude_self, int64_t delay_steps, int64_t n_post) {
  constexpr uint32_t kGolden = 0x9E3779B9u;
  Ring ring;
  RingOf(out->dimensions(), &ring);
  // n_local: the neurons [offset, offset + n_local) of the n_post this buffer holds.
  const int64_t batch = ring.batch, slots = ring.slots, n_local = ring.n;
  const int64_t n_pre = act.dimensions()[1];
  const int64_t bw = Leading(weight), bs = Leading(seed), bo = Leading(offset);
  const T* a_all = static_cast<const T*>(act.untyped_data());
  const T* w_all = static_cast<const T*>(weight.untyped_data());
  const uint32_t* seed_all = static_cast<const uint32_t*>(seed.untyped_data());
  const int32_t* o_all = static_cast<const int32_t*>(offset.untyped_data());
  const int32_t* s_all = static_cast<const int32_t*>(step.untyped_data());
  T* buf_all = static_cast<T*>(out->untyped_data());
  const uint64_t candidates = static_cast<uint64_t>(n_post - (exclude_self ? 1 : 0));

  for (int64_t b = 0; b < batch; ++b) {
    const T* a = a_all + b * n_pre;
    const T w = w_all[bw == 1 ? 0 : b];
    const uint32_t s = seed_all[bs == 1 ? 0 : b];
    const int64_t first = o_all[bo == 1 ? 0 : b];
    T* row = buf_all + b * slots * n_local + ((s_all[b] + delay_steps) % slots) * n_local;
    for (int64_t start = 0; start < n_pre; start += kBlock) {
      const int64_t stop = start + kBlock < n_pre ? start + kBlock : n_pre;
      if (stop - start == kBlock && !BlockActive(a + start)) continue;
      for (int64_t j = start; j < stop; ++j) {
        if (a[j] == T(0)) continue;
        const T value = w * a[j];
        const uint32_t rj = static_cast<uint32_t>(j);
        const uint32_t row_key = LowBias32(LowBias32(rj ^ s) + s);
        for (int64_t c = 0; c < k; ++c) {
          const uint32_t h = LowBias32(row_key + static_cast<uint32_t>(c) * kGolden);
          // floor(h * candidates / 2^32): uniform over the candidates.
          uint32_t t = static_cast<uint32_t>((static_cast<uint64_t>(h) * candidates) >> 32);
          if (exclude_self && t >= rj) ++t;
          // One unsigned comparison: targets below `first` wrap to large values.
          const uint64_t local = static_cast<uint64_t>(static_cast<int64_t>(t) - first);
          if (local < static_cast<uint64_t>(n_local)) row[local] += value;
        }
      }
    }
  }
}

ffi::Error DeliverProceduralImpl(ffi::AnyBuffer act, ffi::AnyBuffer weight, ffi::AnyBuffer seed,
                                 ffi::AnyBuffer offset, ffi::AnyBuffer buffer,
                                 ffi::AnyBuffer step, ffi::Result<ffi::AnyBuffer> out,
                                 int64_t k, int64_t exclude_self, int64_t delay_steps,
                                 int64_t n_post) {
  Ring ring;
  if (!RingOf(out->dimensions(), &ring) || act.dimensions().size() != 2 ||
      seed.element_type() != ffi::DataType::U32 || step.element_type() != ffi::DataType::S32 ||
      offset.element_type() != ffi::DataType::S32 || n_post < ring.n) {
    return ffi::Error::InvalidArgument("neurojax_deliver_procedural: bad shapes or dtypes");
  }
  if (out->untyped_data() != buffer.untyped_data()) {
    std::memcpy(out->untyped_data(), buffer.untyped_data(), buffer.size_bytes());
  }
  switch (act.element_type()) {
    case ffi::DataType::F32:
      DeliverProcedural<float>(act, weight, seed, offset, step, out, k, exclude_self != 0,
                               delay_steps, n_post);
      break;
    case ffi::DataType::F64:
      DeliverProcedural<double>(act, weight, seed, offset, step, out, k, exclude_self != 0,
                                delay_steps, n_post);
      break;
    default:
      return ffi::Error::InvalidArgument("neurojax_deliver_procedural: float32 or float64 only");
  }
  return ffi::Error::Success();
}

// Pair-STDP weight update on ELL rows (neurojax/plasticity/stdp.py, `_sparse_update`,
// whose pure-JAX loop defines the semantics, with the same floating-point operations in
// the same order): first every presynaptic neuron j with pre[j] != 0 depresses the
// existing synapses of its row,
//   w <- clip(w - a_minus f_-(w) pre[j] x_post[target], 0, w_max),
// then every postsynaptic neuron p with post[p] != 0 potentiates its incoming synapses,
// found through post_index (flat positions in the rows; >= n_pre * width is padding),
//   w <- clip(w + a_plus f_+(w) post[p] x_pre[row], 0, w_max),
// with f = 1 (additive) or f_- = w / w_max, f_+ = 1 - w / w_max (multiplicative). The
// weights are updated in place: work follows the spikes, not the synapses.
// Shapes (T = float or double; a leading batch axis as above, Bx 1 or B, that the
// unbatched call leaves out):
//   weights    (B, n_pre, d)         T      plastic weights (aliased with the result)
//   targets    (Bt, n_pre, d)        int32  postsynaptic index; >= n_post is padding
//   post_index (Bi, n_post, m)       int32  flat synapse positions onto each neuron
//   pre, x_pre (B, n_pre)            T      presynaptic spikes (amplitudes) and trace
//   post, x_post (B, n_post)         T      postsynaptic spikes (amplitudes) and trace
//   params     (Bp, 3)               T      a_plus, a_minus, w_max
// Attribute: multiplicative (0 or 1).
template <typename T>
T Clip(T x, T w_max) {
  // jnp.clip(x, 0, w_max) = minimum(maximum(x, 0), w_max); a NaN stays NaN.
  if (x < T(0)) x = T(0);
  if (x > w_max) x = w_max;
  return x;
}

// Pure JAX's `w - c * x` and `w + c * x` run on XLA:CPU as one fused multiply-add on
// hosts that have one, so the kernel rounds the same way with std::fma; the FMA
// instance below inlines it as an instruction instead of a libm call.
// One step's weight update of one batch member, in place: depression of the rows of
// the presynaptic neurons that spiked (amplitudes `a`), then potentiation, through
// `index`, of the synapses onto the postsynaptic neurons that spiked (`s`); `xp` and
// `xq` are the traces the update reads (PairStdp and PairStdpStep below).
template <typename T>
__attribute__((always_inline)) inline void PairStdpRows(
    T* w, const int32_t* tgt, const int32_t* index, const T* a, const T* s, const T* xp,
    const T* xq, int64_t n_pre, int64_t width, int64_t n_post, int64_t max_in, T a_plus,
    T a_minus, T w_max, bool mult) {
  const int64_t n_syn = n_pre * width;
  for (int64_t start = 0; start < n_pre; start += kBlock) {
    const int64_t stop = start + kBlock < n_pre ? start + kBlock : n_pre;
    if (stop - start == kBlock && !BlockActive(a + start)) continue;
    for (int64_t j = start; j < stop; ++j) {
      const T aj = a[j];
      if (aj == T(0)) continue;
      const int32_t* row_t = tgt + j * width;
      T* row_w = w + j * width;
      for (int64_t k = 0; k < width; ++k) {
        const int32_t t = row_t[k];
        if (t < 0 || t >= n_post) continue;  // padding
        const T wk = row_w[k];
        const T f = mult ? wk / w_max : T(1);
        row_w[k] = Clip<T>(std::fma(-(a_minus * f * aj), xq[t], wk), w_max);
      }
    }
  }
  for (int64_t start = 0; start < n_post; start += kBlock) {
    const int64_t stop = start + kBlock < n_post ? start + kBlock : n_post;
    if (stop - start == kBlock && !BlockActive(s + start)) continue;
    for (int64_t p = start; p < stop; ++p) {
      const T sp = s[p];
      if (sp == T(0)) continue;
      const int32_t* row_i = index + p * max_in;
      for (int64_t k = 0; k < max_in; ++k) {
        const int32_t i = row_i[k];
        if (i < 0 || i >= n_syn) continue;  // padding
        const T wk = w[i];
        const T f = mult ? T(1) - wk / w_max : T(1);
        const uint32_t row = static_cast<uint32_t>(i) / static_cast<uint32_t>(width);
        w[i] = Clip<T>(std::fma(a_plus * f * sp, xp[row], wk), w_max);
      }
    }
  }
}

template <typename T>
__attribute__((always_inline)) inline void PairStdp(const ffi::AnyBuffer& targets, const ffi::AnyBuffer& post_index,
              const ffi::AnyBuffer& pre, const ffi::AnyBuffer& post, const ffi::AnyBuffer& x_pre,
              const ffi::AnyBuffer& x_post, const ffi::AnyBuffer& params,
              ffi::Result<ffi::AnyBuffer>& out, bool mult) {
  const auto tdims = targets.dimensions();
  const auto idims = post_index.dimensions();
  const int64_t n_pre = tdims[tdims.size() - 2], width = tdims[tdims.size() - 1];
  const int64_t n_post = idims[idims.size() - 2], max_in = idims[idims.size() - 1];
  const int64_t n_syn = n_pre * width;
  const int64_t batch = static_cast<int64_t>(out->element_count()) / n_syn;
  const int64_t bt = static_cast<int64_t>(targets.element_count()) / n_syn;
  const int64_t bi =
      n_post * max_in == 0 ? 1 : static_cast<int64_t>(post_index.element_count()) / (n_post * max_in);
  const int64_t bp = static_cast<int64_t>(params.element_count()) / 3;
  const int32_t* t_all = static_cast<const int32_t*>(targets.untyped_data());
  const int32_t* i_all = static_cast<const int32_t*>(post_index.untyped_data());
  const T* pre_all = static_cast<const T*>(pre.untyped_data());
  const T* post_all = static_cast<const T*>(post.untyped_data());
  const T* xpre_all = static_cast<const T*>(x_pre.untyped_data());
  const T* xpost_all = static_cast<const T*>(x_post.untyped_data());
  const T* p_all = static_cast<const T*>(params.untyped_data());
  T* w_all = static_cast<T*>(out->untyped_data());

  for (int64_t b = 0; b < batch; ++b) {
    const int32_t* tgt = t_all + (bt == 1 ? 0 : b) * n_syn;
    const int32_t* index = i_all + (bi == 1 ? 0 : b) * n_post * max_in;
    const T* a = pre_all + b * n_pre;
    const T* s = post_all + b * n_post;
    const T* xp = xpre_all + b * n_pre;
    const T* xq = xpost_all + b * n_post;
    const T* prm = p_all + (bp == 1 ? 0 : b) * 3;
    const T a_plus = prm[0], a_minus = prm[1], w_max = prm[2];
    T* w = w_all + b * n_syn;
    PairStdpRows<T>(w, tgt, index, a, s, xp, xq, n_pre, width, n_post, max_in, a_plus, a_minus,
                    w_max, mult);
  }
}

#define NEUROJAX_PAIR_STDP_ARGS                                                            \
  const ffi::AnyBuffer &targets, const ffi::AnyBuffer &post_index, const ffi::AnyBuffer &pre, \
      const ffi::AnyBuffer &post, const ffi::AnyBuffer &x_pre, const ffi::AnyBuffer &x_post,   \
      const ffi::AnyBuffer &params, ffi::Result<ffi::AnyBuffer>&out, bool mult
template <typename T>
__attribute__((target("fma"))) void PairStdpFma(NEUROJAX_PAIR_STDP_ARGS) {
  PairStdp<T>(targets, post_index, pre, post, x_pre, x_post, params, out, mult);
}
template <typename T>
void PairStdpPlain(NEUROJAX_PAIR_STDP_ARGS) {
  PairStdp<T>(targets, post_index, pre, post, x_pre, x_post, params, out, mult);
}
template <typename T>
void PairStdpDispatch(NEUROJAX_PAIR_STDP_ARGS) {
  static const bool fma = __builtin_cpu_supports("fma");
  if (fma) {
    PairStdpFma<T>(targets, post_index, pre, post, x_pre, x_post, params, out, mult);
  } else {
    PairStdpPlain<T>(targets, post_index, pre, post, x_pre, x_post, params, out, mult);
  }
}
#undef NEUROJAX_PAIR_STDP_ARGS

ffi::Error PairStdpImpl(ffi::AnyBuffer weights, ffi::AnyBuffer targets, ffi::AnyBuffer post_index,
                        ffi::AnyBuffer pre, ffi::AnyBuffer post, ffi::AnyBuffer x_pre,
                        ffi::AnyBuffer x_post, ffi::AnyBuffer params,
                        ffi::Result<ffi::AnyBuffer> out, int64_t multiplicative) {
  // Ranks may leave out the batch axis (then B = 1): sizes are checked by element
  // counts, so that the unbatched call needs no reshape of the weights (a reshape
  // around an aliased operand makes XLA copy it).
  const auto tdims = targets.dimensions();
  const auto idims = post_index.dimensions();
  if (tdims.size() < 2 || idims.size() < 2 || targets.element_type() != ffi::DataType::S32 ||
      post_index.element_type() != ffi::DataType::S32) {
    return ffi::Error::InvalidArgument("neurojax_pair_stdp: bad shapes or dtypes");
  }
  const size_t n_pre = tdims[tdims.size() - 2], n_syn = n_pre * tdims[tdims.size() - 1];
  const size_t n_post = idims[idims.size() - 2];
  const size_t batch = n_syn == 0 ? 0 : out->element_count() / n_syn;
  const auto per = [batch](const ffi::AnyBuffer& x, size_t n) {
    return x.element_count() == batch * n;
  };
  const auto shared = [batch](const ffi::AnyBuffer& x, size_t n) {
    return x.element_count() == n || x.element_count() == batch * n;
  };
  if (n_syn == 0 || out->element_count() != batch * n_syn || !shared(targets, n_syn) ||
      !shared(post_index, n_post * idims[idims.size() - 1]) || !per(pre, n_pre) ||
      !per(x_pre, n_pre) || !per(post, n_post) || !per(x_post, n_post) || !shared(params, 3)) {
    return ffi::Error::InvalidArgument("neurojax_pair_stdp: bad shapes or dtypes");
  }
  if (out->untyped_data() != weights.untyped_data()) {
    std::memcpy(out->untyped_data(), weights.untyped_data(), weights.size_bytes());
  }
  switch (weights.element_type()) {
    case ffi::DataType::F32:
      PairStdpDispatch<float>(targets, post_index, pre, post, x_pre, x_post, params, out,
                      multiplicative != 0);
      break;
    case ffi::DataType::F64:
      PairStdpDispatch<double>(targets, post_index, pre, post, x_pre, x_post, params, out,
                       multiplicative != 0);
      break;
    default:
      return ffi::Error::InvalidArgument("neurojax_pair_stdp: float32 or float64 only");
  }
  return ffi::Error::Success();
}


// One whole step of PairSTDP on a sparse projection, traces included
// (neurojax/plasticity/stdp.py, `_sparse_step`; its pure-JAX reference,
// `_sparse_step_reference`, defines the semantics), in place:
//   x_pre  <- x_pre c_plus + pre          ("nearest": 1 where pre > 0, else x_pre c_plus)
//   x_post <- x_post c_minus              (the trace the depression reads)
//   the weight update (PairStdpRows) with these two traces
//   x_post <- x_post_old c_minus + post   ("nearest": 1 where post > 0)
// One call instead of the update and three elementwise passes of XLA (a thunk each per
// step). The multiply-adds round once (std::fma), as XLA:CPU fuses them on hosts with
// FMA, so traces and weights equal the pure-JAX step's bit for bit there.
// Shapes: as PairStdp, with x_pre, x_post the traces before this step and params
// (Bp, 5): a_plus, a_minus, w_max, c_plus = exp(-dt / tau_plus), c_minus =
// exp(-dt / tau_minus) (computed by XLA, so the factors are XLA's). Results: weights,
// x_pre, x_post (aliased to the operands). Attributes: multiplicative, nearest (0 or 1).
template <typename T>
__attribute__((always_inline)) inline void PairStdpStep(
    const ffi::AnyBuffer& targets, const ffi::AnyBuffer& post_index, const ffi::AnyBuffer& pre,
    const ffi::AnyBuffer& post, const ffi::AnyBuffer& x_pre, const ffi::AnyBuffer& x_post,
    const ffi::AnyBuffer& params, ffi::Result<ffi::AnyBuffer>& w_out,
    ffi::Result<ffi::AnyBuffer>& xpre_out, ffi::Result<ffi::AnyBuffer>& xpost_out, bool mult,
    bool nearest) {
  const auto tdims = targets.dimensions();
  const auto idims = post_index.dimensions();
  const int64_t n_pre = tdims[tdims.size() - 2], width = tdims[tdims.size() - 1];
  const int64_t n_post = idims[idims.size() - 2], max_in = idims[idims.size() - 1];
  const int64_t n_syn = n_pre * width;
  const int64_t batch = static_cast<int64_t>(w_out->element_count()) / n_syn;
  const int64_t bt = static_cast<int64_t>(targets.element_count()) / n_syn;
  const int64_t bi =
      n_post * max_in == 0 ? 1 : static_cast<int64_t>(post_index.element_count()) / (n_post * max_in);
  const int64_t bp = static_cast<int64_t>(params.element_count()) / 5;
  const int32_t* t_all = static_cast<const int32_t*>(targets.untyped_data());
  const int32_t* i_all = static_cast<const int32_t*>(post_index.untyped_data());
  const T* pre_all = static_cast<const T*>(pre.untyped_data());
  const T* post_all = static_cast<const T*>(post.untyped_data());
  const T* xpre_in = static_cast<const T*>(x_pre.untyped_data());
  const T* xpost_in = static_cast<const T*>(x_post.untyped_data());
  const T* p_all = static_cast<const T*>(params.untyped_data());
  T* w_all = static_cast<T*>(w_out->untyped_data());
  T* xpre_all = static_cast<T*>(xpre_out->untyped_data());
  T* xpost_all = static_cast<T*>(xpost_out->untyped_data());
  // The carried post trace of this step's postsynaptic spikes, computed from the old
  // trace before the decayed one (which the depression reads) overwrites it.
  thread_local std::vector<std::pair<int64_t, T>> bumped;

  for (int64_t b = 0; b < batch; ++b) {
    const T* a = pre_all + b * n_pre;
    const T* s = post_all + b * n_post;
    const T* prm = p_all + (bp == 1 ? 0 : b) * 5;
    const T c_plus = prm[3], c_minus = prm[4];
    const T* pt = xpre_in + b * n_pre;
    const T* qt = xpost_in + b * n_post;
    T* xp = xpre_all + b * n_pre;  // may be pt (aliased): elementwise, so in place is fine
    T* xq = xpost_all + b * n_post;
    if (nearest) {
      for (int64_t j = 0; j < n_pre; ++j) xp[j] = a[j] > T(0) ? T(1) : pt[j] * c_plus;
    } else {
      for (int64_t j = 0; j < n_pre; ++j) xp[j] = std::fma(pt[j], c_plus, a[j]);
    }
    bumped.clear();
    for (int64_t start = 0; start < n_post; start += kBlock) {
      const int64_t stop = start + kBlock < n_post ? start + kBlock : n_post;
      if (stop - start == kBlock && !BlockActive(s + start)) continue;
      for (int64_t p = start; p < stop; ++p) {
        if (s[p] == T(0)) continue;
        if (nearest) {
          if (s[p] > T(0)) bumped.emplace_back(p, T(1));
        } else {
          bumped.emplace_back(p, std::fma(qt[p], c_minus, s[p]));
        }
      }
    }
    for (int64_t i = 0; i < n_post; ++i) xq[i] = qt[i] * c_minus;
    PairStdpRows<T>(w_all + b * n_syn, t_all + (bt == 1 ? 0 : b) * n_syn,
                    i_all + (bi == 1 ? 0 : b) * n_post * max_in, a, s, xp, xq, n_pre, width,
                    n_post, max_in, prm[0], prm[1], prm[2], mult);
    for (const auto& [p, x] : bumped) xq[p] = x;
  }
}

#define NEUROJAX_PAIR_STDP_STEP_ARGS                                                          \
  const ffi::AnyBuffer &targets, const ffi::AnyBuffer &post_index, const ffi::AnyBuffer &pre,  \
      const ffi::AnyBuffer &post, const ffi::AnyBuffer &x_pre, const ffi::AnyBuffer &x_post,    \
      const ffi::AnyBuffer &params, ffi::Result<ffi::AnyBuffer>&w_out,                          \
      ffi::Result<ffi::AnyBuffer>&xpre_out, ffi::Result<ffi::AnyBuffer>&xpost_out, bool mult,   \
      bool nearest
#define NEUROJAX_PAIR_STDP_STEP_CALL \
  targets, post_index, pre, post, x_pre, x_post, params, w_out, xpre_out, xpost_out, mult, nearest
template <typename T>
__attribute__((target("fma"))) void PairStdpStepFma(NEUROJAX_PAIR_STDP_STEP_ARGS) {
  PairStdpStep<T>(NEUROJAX_PAIR_STDP_STEP_CALL);
}
template <typename T>
void PairStdpStepPlain(NEUROJAX_PAIR_STDP_STEP_ARGS) {
  PairStdpStep<T>(NEUROJAX_PAIR_STDP_STEP_CALL);
}
template <typename T>
void PairStdpStepDispatch(NEUROJAX_PAIR_STDP_STEP_ARGS) {
  static const bool fma = __builtin_cpu_supports("fma");
  if (fma) {
    PairStdpStepFma<T>(NEUROJAX_PAIR_STDP_STEP_CALL);
  } else {
    PairStdpStepPlain<T>(NEUROJAX_PAIR_STDP_STEP_CALL);
  }
}
#undef NEUROJAX_PAIR_STDP_STEP_ARGS
#undef NEUROJAX_PAIR_STDP_STEP_CALL

ffi::Error PairStdpStepImpl(ffi::AnyBuffer weights, ffi::AnyBuffer targets,
                            ffi::AnyBuffer post_index, ffi::AnyBuffer pre, ffi::AnyBuffer post,
                            ffi::AnyBuffer x_pre, ffi::AnyBuffer x_post, ffi::AnyBuffer params,
                            ffi::Result<ffi::AnyBuffer> w_out,
                            ffi::Result<ffi::AnyBuffer> xpre_out,
                            ffi::Result<ffi::AnyBuffer> xpost_out, int64_t multiplicative,
                            int64_t nearest) {
  // As PairStdpImpl: ranks may leave out the batch axis, sizes are checked by counts.
  const auto tdims = targets.dimensions();
  const auto idims = post_index.dimensions();
  if (tdims.size() < 2 || idims.size() < 2 || targets.element_type() != ffi::DataType::S32 ||
      post_index.element_type() != ffi::DataType::S32) {
    return ffi::Error::InvalidArgument("neurojax_pair_stdp_step: bad shapes or dtypes");
  }
  const size_t n_pre = tdims[tdims.size() - 2], n_syn = n_pre * tdims[tdims.size() - 1];
  const size_t n_post = idims[idims.size() - 2];
  const size_t batch = n_syn == 0 ? 0 : w_out->element_count() / n_syn;
  const auto per = [batch](const ffi::AnyBuffer& x, size_t n) {
    return x.element_count() == batch * n;
  };
  const auto shared = [batch](const ffi::AnyBuffer& x, size_t n) {
    return x.element_count() == n || x.element_count() == batch * n;
  };
  const auto type = weights.element_type();
  if (n_syn == 0 || w_out->element_count() != batch * n_syn || !shared(targets, n_syn) ||
      !shared(post_index, n_post * idims[idims.size() - 1]) || !per(pre, n_pre) ||
      !per(x_pre, n_pre) || !per(post, n_post) || !per(x_post, n_post) || !shared(params, 5) ||
      xpre_out->element_count() != batch * n_pre || xpost_out->element_count() != batch * n_post ||
      pre.element_type() != type || post.element_type() != type || x_pre.element_type() != type ||
      x_post.element_type() != type || params.element_type() != type) {
    return ffi::Error::InvalidArgument("neurojax_pair_stdp_step: bad shapes or dtypes");
  }
  if (w_out->untyped_data() != weights.untyped_data()) {
    std::memcpy(w_out->untyped_data(), weights.untyped_data(), weights.size_bytes());
  }
  switch (type) {
    case ffi::DataType::F32:
      PairStdpStepDispatch<float>(targets, post_index, pre, post, x_pre, x_post, params, w_out,
                                  xpre_out, xpost_out, multiplicative != 0, nearest != 0);
      break;
    case ffi::DataType::F64:
      PairStdpStepDispatch<double>(targets, post_index, pre, post, x_pre, x_post, params, w_out,
                                   xpre_out, xpost_out, multiplicative != 0, nearest != 0);
      break;
    default:
      return ffi::Error::InvalidArgument("neurojax_pair_stdp_step: float32 or float64 only");
  }
  return ffi::Error::Success();
}


// Backward pass of event-driven propagation over the gradient support
// (neurojax/connectivity/weights.py, `_support_vjp`, whose pure-JAX loop defines the
// semantics): for every presynaptic row i with support[i] or act[i] != 0,
//   g_act[i]    = sum_k w[i, k] g_syn[i, k]
//   g_w[i, k]   = act[i] g_syn[i, k]     (per-synapse weights), or
//   g_w        += sum_k act[i] g_syn[i, k]   (one scalar weight),
// where g_syn[i, k] is the ring-buffer cotangent at the synapse's target in the slot
// its event was written to (one slot for a homogeneous delay, the synapse's own for
// per-synapse delays) and 0 for padding targets (>= n_post). Every other row of g_act
// and g_w is exactly 0. One pass over the rows, skipping silent blocks as the forward
// kernel does: ~1 % of COBA-4k's rows are near threshold or spiking per step, and the
// pure-JAX loop pays a gather/compute/scatter of 16 padded rows per chunk for them.
// Shapes (T = float or double; leading batch axis as in Deliver, Bx 1 or B):
//   act      (B, n_pre)              T      presynaptic outputs of the forward step
//   support  (B, n_pre)              pred   presynaptic gradient support
//   weights  (Bw,) or (Bw, n_pre, d) T      one weight per batch, or per synapse
//   targets  (Bt, n_pre, d)          int32  postsynaptic index; >= n_post is padding
//   delays   (Bd, n_pre, d) or empty T      per-synapse delays [ms], or none
//   g_buffer (B, slots, n_post)      T      cotangent of the ring buffer
//   step     (B,)                    int32  the forward step
// Results: g_act (B, n_pre) T and g_w (B,) or (B, n_pre, d) T. Attributes as Deliver's.
// With per-synapse weights, a g_w of shape (B,) asks for the sum over synapses only:
// their gradient is then taken event by event in JAX (`_event_weight_gradient`).
//
// Rounding: g_w per synapse is the same product as pure JAX's, bit for bit. The sums
// have the same terms in another order, so they agree to rounding (tests: 1e-6
// relative in float32): XLA:CPU reduces a row in vector lanes (16 for float32 on an
// AVX-512 host, then a tree), an order that depends on the host's vector width, so
// the row sum here runs plainly, k = 0, 1, ..., without a fused multiply-add (XLA does
// not fuse this one); the scalar weight's sum over rows is accumulated in double
// (the pure-JAX loop sums chunk by chunk).
template <typename T>
void SupportVjp(
    const ffi::AnyBuffer& act, const ffi::AnyBuffer& support, const ffi::AnyBuffer& weights,
    const ffi::AnyBuffer& targets, const ffi::AnyBuffer& delays, const ffi::AnyBuffer& g_buffer,
    const ffi::AnyBuffer& step, ffi::Result<ffi::AnyBuffer>& g_act_out,
    ffi::Result<ffi::AnyBuffer>& g_w_out, int64_t delay_steps, double dt) {
  const auto gdims = g_buffer.dimensions();
  const int64_t batch = gdims[0], slots = gdims[1], n_post = gdims[2];
  const SparseRows<T> syn(weights, targets, delays);
  const int64_t n_pre = syn.n_pre, width = syn.width, row_size = syn.row_size;
  const bool per_synapse_w = syn.per_synapse_w;
  // g_w of one element per batch member: the sum over synapses (a scalar weight's
  // cotangent; for per-synapse weights the caller takes their gradient elsewhere and
  // asks for this cheap sum instead of the (B, n_pre, d) array).
  const bool per_synapse_gw = per_synapse_w && g_w_out->element_count() != static_cast<size_t>(batch);

  const T* a_all = static_cast<const T*>(act.untyped_data());
  const uint8_t* m_all = static_cast<const uint8_t*>(support.untyped_data());
  const T* g_all = static_cast<const T*>(g_buffer.untyped_data());
  const int32_t* s_all = static_cast<const int32_t*>(step.untyped_data());
  T* ga_all = static_cast<T*>(g_act_out->untyped_data());
  T* gw_all = static_cast<T*>(g_w_out->untyped_data());
  const T dt_t = static_cast<T>(dt);
  std::memset(ga_all, 0, g_act_out->size_bytes());
  std::memset(gw_all, 0, g_w_out->size_bytes());

  for (int64_t b = 0; b < batch; ++b) {
    const T* a = a_all + b * n_pre;
    const uint8_t* m = m_all + b * n_pre;
    const int32_t* tgt = syn.targets_of(b);
    const T* w = syn.weights_of(b);
    const T* d = syn.delays_of(b);
    const T* gbuf = g_all + b * slots * n_post;
    const int64_t now = s_all[b];
    const T* g_row = gbuf + ((now + delay_steps) % slots) * n_post;
    T* ga = ga_all + b * n_pre;
    T* gw = per_synapse_gw ? gw_all + b * row_size : nullptr;
    double gw_sum = 0.0;
    for (int64_t start = 0; start < n_pre; start += kBlock) {
      const int64_t stop = start + kBlock < n_pre ? start + kBlock : n_pre;
      if (stop - start == kBlock && !BlockActive(a + start) && !BytesActive(m + start)) continue;
      for (int64_t j = start; j < stop; ++j) {
        const T aj = a[j];
        if (m[j] == 0 && aj == T(0)) continue;  // NaN != 0: visited, as in pure JAX
        const int32_t* row_t = tgt + j * width;
        const T* row_w = per_synapse_w ? w + j * width : nullptr;
        const T* row_d = d != nullptr ? d + j * width : nullptr;
        T* row_gw = gw != nullptr ? gw + j * width : nullptr;
        T acc = T(0);
        T row_gw_sum = T(0);
        for (int64_t k = 0; k < width; ++k) {
          const int32_t t = row_t[k];
          T g = T(0);
          if (t >= 0 && t < n_post) {
            if (row_d != nullptr) {
              g = gbuf[DelaySlot(row_d[k], dt_t, now, slots) * n_post + t];
            } else {
              g = g_row[t];
            }
          }
          acc += (row_w != nullptr ? row_w[k] : w[0]) * g;
          if (row_gw != nullptr) {
            row_gw[k] = aj * g;
          } else {
            row_gw_sum += aj * g;
          }
        }
        ga[j] = acc;
        if (row_gw == nullptr) gw_sum += static_cast<double>(row_gw_sum);
      }
    }
    if (!per_synapse_gw) gw_all[b] = static_cast<T>(gw_sum);
  }
}

ffi::Error SupportVjpImpl(ffi::AnyBuffer act, ffi::AnyBuffer support, ffi::AnyBuffer weights,
                          ffi::AnyBuffer targets, ffi::AnyBuffer delays, ffi::AnyBuffer g_buffer,
                          ffi::AnyBuffer step, ffi::Result<ffi::AnyBuffer> g_act,
                          ffi::Result<ffi::AnyBuffer> g_w, int64_t delay_steps, double dt) {
  const auto gdims = g_buffer.dimensions();
  const auto tdims = targets.dimensions();
  if (gdims.size() != 3 || tdims.size() != 3 || act.dimensions().size() != 2 ||
      targets.element_type() != ffi::DataType::S32 || step.element_type() != ffi::DataType::S32 ||
      support.element_type() != ffi::DataType::PRED ||
      support.element_count() != act.element_count() ||
      act.element_count() != static_cast<size_t>(gdims[0] * tdims[1]) ||
      g_act->element_count() != act.element_count() ||
      (g_w->element_count() != static_cast<size_t>(gdims[0]) &&
       g_w->element_count() !=
           static_cast<size_t>(gdims[0]) * (weights.dimensions().size() == 3 ? tdims[1] * tdims[2] : 1)) ||
      act.element_type() != g_buffer.element_type() ||
      weights.element_type() != g_buffer.element_type() ||
      (delays.element_count() > 0 && delays.element_type() != g_buffer.element_type())) {
    return ffi::Error::InvalidArgument("neurojax_support_vjp: bad shapes or dtypes");
  }
  switch (g_buffer.element_type()) {
    case ffi::DataType::F32:
      SupportVjp<float>(act, support, weights, targets, delays, g_buffer, step, g_act,
                                g_w, delay_steps, dt);
      break;
    case ffi::DataType::F64:
      SupportVjp<double>(act, support, weights, targets, delays, g_buffer, step, g_act,
                                 g_w, delay_steps, dt);
      break;
    default:
      return ffi::Error::InvalidArgument("neurojax_support_vjp: float32 or float64 only");
  }
  return ffi::Error::Success();
}

// The ring-buffer slot due now, taken out: row (step % slots) of each batch member's
// buffer is copied to `arrivals` and zeroed in place. As one call that is the only
// reader of the carried buffer, XLA updates it in place; read by the synapse's fusions
// and cleared by a dynamic-update-slice instead, it was copied whole up to three times
// per step (benchmarks/README.md, issue 15). Any element type (a row of bytes).
//   buffer   (B, slots, n)  T      ring buffer (aliased with the first result), or
//            (slots, n)            one unbatched member's
//   step     (B,)           int32  current step
// Results: the buffer with the slot zeroed, and the slot's row ((B, n) or (n,)).
ffi::Error TakeSlotImpl(ffi::AnyBuffer buffer, ffi::AnyBuffer step, ffi::Result<ffi::AnyBuffer> out,
                        ffi::Result<ffi::AnyBuffer> arrivals) {
  Ring ring;
  if (!RingOf(out->dimensions(), &ring) || step.element_type() != ffi::DataType::S32 ||
      arrivals->element_type() != out->element_type()) {
    return ffi::Error::InvalidArgument("neurojax_take_slot: bad shapes or dtypes");
  }
  if (out->untyped_data() != buffer.untyped_data()) {
    std::memcpy(out->untyped_data(), buffer.untyped_data(), buffer.size_bytes());
  }
  const int64_t batch = ring.batch, slots = ring.slots;
  if (batch * slots == 0) return ffi::Error::Success();
  const int64_t row_bytes = out->size_bytes() / (batch * slots);
  const int32_t* s_all = static_cast<const int32_t*>(step.untyped_data());
  const int64_t bs = Leading(step);
  char* buf = static_cast<char*>(out->untyped_data());
  char* dst = static_cast<char*>(arrivals->untyped_data());
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t s = s_all[bs == 1 ? 0 : b];
    char* row = buf + (b * slots + ((s % slots) + slots) % slots) * row_bytes;
    std::memcpy(dst + b * row_bytes, row, row_bytes);
    std::memset(row, 0, row_bytes);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(NeurojaxDeliverEvents, DeliverImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // act
                                  .Arg<ffi::AnyBuffer>()  // weights
                                  .Arg<ffi::AnyBuffer>()  // targets
                                  .Arg<ffi::AnyBuffer>()  // delays
                                  .Arg<ffi::AnyBuffer>()  // buffer
                                  .Arg<ffi::AnyBuffer>()  // step
                                  .Ret<ffi::AnyBuffer>()  // buffer, updated
                                  .Attr<int64_t>("delay_steps")
                                  .Attr<double>("dt"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(NeurojaxDeliverProcedural, DeliverProceduralImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // act (B, n_pre)
                                  .Arg<ffi::AnyBuffer>()  // weight (Bw,)
                                  .Arg<ffi::AnyBuffer>()  // seed (Bs,) uint32
                                  .Arg<ffi::AnyBuffer>()  // offset (Bo,) int32: first target held
                                  .Arg<ffi::AnyBuffer>()  // buffer (B, slots, n_local) or (slots, n_local)
                                  .Arg<ffi::AnyBuffer>()  // step (B,) int32
                                  .Ret<ffi::AnyBuffer>()  // buffer, updated
                                  .Attr<int64_t>("k")
                                  .Attr<int64_t>("exclude_self")
                                  .Attr<int64_t>("delay_steps")
                                  .Attr<int64_t>("n_post"));

// Optional: a build without this symbol (from before it existed) keeps the propagation
// kernels, and the plastic update runs in pure JAX (neurojax/_native/__init__.py).
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeurojaxPairStdp, PairStdpImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // weights (B, n_pre, d)
                                  .Arg<ffi::AnyBuffer>()  // targets (Bt, n_pre, d) int32
                                  .Arg<ffi::AnyBuffer>()  // post_index (Bi, n_post, m) int32
                                  .Arg<ffi::AnyBuffer>()  // pre (B, n_pre)
                                  .Arg<ffi::AnyBuffer>()  // post (B, n_post)
                                  .Arg<ffi::AnyBuffer>()  // x_pre (B, n_pre)
                                  .Arg<ffi::AnyBuffer>()  // x_post (B, n_post)
                                  .Arg<ffi::AnyBuffer>()  // params (Bp, 3)
                                  .Ret<ffi::AnyBuffer>()  // weights, updated
                                  .Attr<int64_t>("multiplicative"));

// Optional, like NeurojaxPairStdp: without it PairSTDP runs its traces in XLA and the
// update through NeurojaxPairStdp (or pure JAX).
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeurojaxPairStdpStep, PairStdpStepImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // weights (B, n_pre, d)
                                  .Arg<ffi::AnyBuffer>()  // targets (Bt, n_pre, d) int32
                                  .Arg<ffi::AnyBuffer>()  // post_index (Bi, n_post, m) int32
                                  .Arg<ffi::AnyBuffer>()  // pre (B, n_pre)
                                  .Arg<ffi::AnyBuffer>()  // post (B, n_post)
                                  .Arg<ffi::AnyBuffer>()  // x_pre before the step (B, n_pre)
                                  .Arg<ffi::AnyBuffer>()  // x_post before the step (B, n_post)
                                  .Arg<ffi::AnyBuffer>()  // params (Bp, 5)
                                  .Ret<ffi::AnyBuffer>()  // weights, updated
                                  .Ret<ffi::AnyBuffer>()  // x_pre after the step
                                  .Ret<ffi::AnyBuffer>()  // x_post after the step
                                  .Attr<int64_t>("multiplicative")
                                  .Attr<int64_t>("nearest"));

// Optional, like NeurojaxPairStdp: without it the backward pass runs the pure-JAX loop.
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeurojaxSupportVjp, SupportVjpImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // act (B, n_pre)
                                  .Arg<ffi::AnyBuffer>()  // support (B, n_pre) pred
                                  .Arg<ffi::AnyBuffer>()  // weights (Bw,) or (Bw, n_pre, d)
                                  .Arg<ffi::AnyBuffer>()  // targets (Bt, n_pre, d) int32
                                  .Arg<ffi::AnyBuffer>()  // delays (Bd, n_pre, d) or empty
                                  .Arg<ffi::AnyBuffer>()  // g_buffer (B, slots, n_post)
                                  .Arg<ffi::AnyBuffer>()  // step (B,) int32
                                  .Ret<ffi::AnyBuffer>()  // g_act (B, n_pre)
                                  .Ret<ffi::AnyBuffer>()  // g_w (B,) or (B, n_pre, d)
                                  .Attr<int64_t>("delay_steps")
                                  .Attr<double>("dt"));

// Optional, like NeurojaxPairStdp: without it the slot is read and cleared in XLA.
XLA_FFI_DEFINE_HANDLER_SYMBOL(NeurojaxTakeSlot, TakeSlotImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // buffer (B, slots, n) or (slots, n)
                                  .Arg<ffi::AnyBuffer>()  // step (Bs,) int32, Bs 1 or B
                                  .Ret<ffi::AnyBuffer>()  // buffer, slot zeroed
                                  .Ret<ffi::AnyBuffer>()  // the slot's row (B, n) or (n,)
);

// The calling convention of the handlers above, checked by neurojax/_native/__init__.py
// so that a build left from an older events.cc is not called with other arguments.
// Version 2: the procedural kernel takes an offset operand and an n_post attribute.
extern "C" int32_t NeurojaxKernelVersion() { return 2; }

// The jaxlib whose XLA FFI headers this library was compiled against (setup.py passes
// it as a compile definition). neurojax/_native/__init__.py compares it with the
// jaxlib it runs under and refuses to register the kernels when they differ.
#ifndef NEUROJAX_BUILD_JAXLIB
#define NEUROJAX_BUILD_JAXLIB "unknown"
#endif
extern "C" const char* NeurojaxBuildJaxlib() { return NEUROJAX_BUILD_JAXLIB; }
