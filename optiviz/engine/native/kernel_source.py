"""The C++ of the native kernel: many steps of one optimizer over rows, state kept in registers.

Each row is independent (its own hyperparameters, state and status), so the kernel takes a block
of LANES rows, loads them into local arrays, and runs every step of the chunk on them before
storing: the compiler turns the lane loop into SIMD (OpenMP's simd pragma, no OpenMP threads);
runner.py hands ranges of blocks to a few Python threads (ctypes lets go of the GIL).

Every line below mirrors one line of optimizers.py / simulator.py, op for op, with torch's CPU
rounding made explicit (``add_(g, alpha=a)`` and ``addcmul`` are one fused multiply-add: std::fma;
the build uses -ffp-contract=off so nothing else is fused). tests/test_native.py checks the result
bit for bit against those Python definitions for every optimizer; a change there that is not
mirrored here fails it.
"""
from __future__ import annotations

OPTIMIZER_IDS = {"sgd": 0, "momentum": 1, "nesterov": 2, "adagrad": 3, "rmsprop": 4, "adam": 5}
LANES = 64

_TEMPLATE = r"""
#include <cmath>
#include <cstdint>
#include <cfloat>
#include <algorithm>
#include <xmmintrin.h>
#include <pmmintrin.h>

__SURFACE__

template <class T> static inline bool finite(T v) { return std::fabs(v) <= std::numeric_limits<T>::max(); }
template <class T> static inline T nan_max(T a, T b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
// torch's lerp: |w| < 0.5 ? fma(w, end - self, self) : fma(w - 1, end - self, end)
template <class T> static inline T lerp(T self, T end, T w) {
    const bool small = std::fabs(w) < T(0.5);
    return std::fma(small ? w : w - T(1), end - self, small ? self : end);
}

typedef void (*vsqrt_f)(const int32_t*, const float*, float*, const int64_t*);
typedef void (*vsqrt_d)(const int32_t*, const double*, double*, const int64_t*);

struct Args {
    int64_t n, steps, t0, threads;
    void *x, *loss, *grad, *x_prev, *loss_prev;      // (n,2) (n) (n,2) (n,2) (n)
    int8_t* status; int64_t *conv_at, *div_at;
    uint8_t *running, *active, *started;
    void* hp;            // per-row hyperparameters in the run's dtype, H arrays of n
    const double* hp64;  // per-row float64 values: lr, lr_decay (adagrad)
    const double* table; // adam: per distinct beta pair, per step: 1 - b1^t, sqrt(1 - b2^t)
    const int32_t* table_index;
    const double* scale; // per step: the schedule's lr factor (null: no schedule, a factor of 1)
    const void* noise;   // (blocks, steps, LANES, 2): the torch path's gradient-noise draws, or null
    const void* noise_std;  // (n): each row's noise std
    void *state0, *state1, *state2;  // the optimizer's buffers, (n,2) each (unused ones: scratch)
    double cx, cy, bound_sq, gtol_sq, ftol;
    void *sqrt32, *sqrt64;  // torch's vector sqrt (MKL's vmsSqrt / vmdSqrt, Fortran ABI), or null: std::sqrt
    int32_t flags;       // 1: no momentum buffer (sgd), 2: skip weight decay, 4: centered, 8: amsgrad
};

// the mode torch's ATen/cpu/vml.h passes: VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE
static const int64_t VML_MODE = 0x2 | 0x140000 | 0x100;

template <class T> static inline void vector_sqrt(const Args& a, const T* in, T* out, int32_t count) {
    void* fn = sizeof(T) == 4 ? a.sqrt32 : a.sqrt64;
    if (fn == nullptr) { for (int i = 0; i < count; ++i) out[i] = std::sqrt(in[i]); return; }
    if (sizeof(T) == 4) ((vsqrt_f)fn)(&count, (const float*)in, (float*)out, &VML_MODE);
    else ((vsqrt_d)fn)(&count, (const double*)in, (double*)out, &VML_MODE);
}

template <class T, int OPT>
static void run(const Args& a, int64_t b_begin, int64_t b_end) {
    constexpr int L = __LANES__;
    const int64_t n = a.n, nb = (n + L - 1) / L;
    T* X = (T*)a.x; T* F = (T*)a.loss; T* G = (T*)a.grad; T* XP = (T*)a.x_prev; T* FP = (T*)a.loss_prev;
    const T* hp = (const T*)a.hp; const T* NZ = (const T*)a.noise; const T* SD = (const T*)a.noise_std; T* S0 = (T*)a.state0; T* S1 = (T*)a.state1; T* S2 = (T*)a.state2;
    const T cx = T(a.cx), cy = T(a.cy), bsq = T(a.bound_sq), gsq = T(a.gtol_sq), ftol = T(a.ftol);
    const int flags = a.flags;
    const bool no_buffer = flags & 1, skip_wd = flags & 2, centered = flags & 4, amsgrad = flags & 8;
    constexpr bool no_buffer_possible = false;  // nesterov always has momentum > 0 (torch's rule)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);  // flush denormals (FTZ | DAZ), as the simulator's stepping does
    for (int64_t b = b_begin; b < std::min(b_end, nb); ++b) {
        const int64_t r0 = b * L;
        const int w = (int)std::min<int64_t>(L, n - r0);
        T x0[L], x1[L], f[L], g0[L], g1[L], p0[L], p1[L], fp[L];
        T lr[L], wd[L], h1[L], h2[L], h3[L], h4[L], sd[L];
        T s0[L], s1[L], u0[L], u1[L], q0[L], q1[L], rad[2*L], root[2*L];
        double lr64[L], d64[L], bc1t[L], bc2t[L]; int32_t ti[L];
        int32_t run_[L], act[L], stt[L], stat[L]; int64_t cat[L], dat[L];  // int32 flags vectorize with floats
        for (int l = 0; l < L; ++l) {
            const int64_t r = r0 + (l < w ? l : 0);
            x0[l] = X[2*r]; x1[l] = X[2*r+1]; f[l] = F[r]; g0[l] = G[2*r]; g1[l] = G[2*r+1];
            p0[l] = XP[2*r]; p1[l] = XP[2*r+1]; fp[l] = FP[r];
            lr[l] = hp[r]; wd[l] = hp[n + r]; sd[l] = NZ ? SD[r] : T(0);
            h1[l] = hp[2*n + r]; h2[l] = hp[3*n + r]; h3[l] = hp[4*n + r]; h4[l] = hp[5*n + r];
            lr64[l] = a.hp64[r]; d64[l] = a.hp64[n + r]; ti[l] = a.table_index ? a.table_index[r] : 0;
            s0[l] = S0[2*r]; s1[l] = S0[2*r+1]; u0[l] = S1[2*r]; u1[l] = S1[2*r+1];
            q0[l] = S2[2*r]; q1[l] = S2[2*r+1];
            run_[l] = a.running[r]; act[l] = a.active[r]; stt[l] = a.started[r];
            stat[l] = a.status[r]; cat[l] = a.conv_at[r]; dat[l] = a.div_at[r];
        }
        for (int64_t s = 0; s < a.steps; ++s) {
            const int64_t t = a.t0 + s + 1;
            if (NZ) {  // gradient noise: g + std * draw (a product, then a sum: two roundings)
                const T* z = NZ + 2 * L * (b * a.steps + s);  // this block's draws for this step, contiguous
                #pragma omp simd
                for (int l = 0; l < L; ++l) { g0[l] = g0[l] + sd[l] * z[2*l]; g1[l] = g1[l] + sd[l] * z[2*l + 1]; }
            }
            // phase 1: weight decay and the moments, up to what torch takes the square root of
            #pragma omp simd
            for (int l = 0; l < L; ++l) {
                T e0 = g0[l], e1 = g1[l];
                e0 = skip_wd ? e0 : std::fma(x0[l], wd[l], e0); e1 = skip_wd ? e1 : std::fma(x1[l], wd[l], e1);
                g0[l] = e0; g1[l] = e1;  // the gradient the update sees (recomputed after the step)
                if (OPT == 3) {          // adagrad: sum += g^2
                    s0[l] = std::fma(e0, e0, s0[l]); s1[l] = std::fma(e1, e1, s1[l]);
                    rad[l] = s0[l]; rad[L + l] = s1[l];
                } else if (OPT == 4) {   // rmsprop; h1 = alpha, h2 = 1 - alpha
                    s0[l] = s0[l] * h1[l]; s1[l] = s1[l] * h1[l];
                    s0[l] = std::fma(e0 * h2[l], e0, s0[l]); s1[l] = std::fma(e1 * h2[l], e1, s1[l]);
                    T v0 = s0[l], v1 = s1[l];
                    // centered: the mean gradient's square comes off (branch-free, so it vectorizes)
                    const T c0 = lerp(u0[l], e0, h2[l]), c1 = lerp(u1[l], e1, h2[l]);
                    u0[l] = centered ? c0 : u0[l]; u1[l] = centered ? c1 : u1[l];
                    v0 = centered ? std::fma(-c0, c0, v0) : v0; v1 = centered ? std::fma(-c1, c1, v1) : v1;
                    rad[l] = v0; rad[L + l] = v1;
                } else if (OPT == 5) {   // adam; h1 = 1 - beta1, h2 = beta2, h3 = 1 - beta2
                    s0[l] = lerp(s0[l], e0, h1[l]); s1[l] = lerp(s1[l], e1, h1[l]);
                    u0[l] = u0[l] * h2[l]; u1[l] = u1[l] * h2[l];
                    u0[l] = std::fma(e0 * h3[l], e0, u0[l]); u1[l] = std::fma(e1 * h3[l], e1, u1[l]);
                    T v0 = u0[l], v1 = u1[l];
                    const T m0 = nan_max(q0[l], v0), m1 = nan_max(q1[l], v1);
                    q0[l] = amsgrad ? m0 : q0[l]; q1[l] = amsgrad ? m1 : q1[l];
                    v0 = amsgrad ? m0 : v0; v1 = amsgrad ? m1 : v1;
                    rad[l] = v0; rad[L + l] = v1;
                }
            }
            if (OPT >= 3) vector_sqrt<T>(a, rad, root, 2 * L);  // torch's own sqrt (see torch_sqrt.py)
            if (OPT == 5 && a.table_index) {  // per-run betas: this step's 1 - beta1^t, sqrt(1 - beta2^t) per lane
                for (int l = 0; l < L; ++l) {
                    const double* row = a.table + 2 * (int64_t(ti[l]) * a.steps + s);
                    bc1t[l] = row[0]; bc2t[l] = row[1];
                }
            }
            const double bc1_all = a.table[2 * s], bc2_all = a.table[2 * s + 1];  // shared betas
            // the schedule: lr * factor in float64, rounded once (_effective_lr, then _rounded)
            const double sc = a.scale ? a.scale[s] : 1.0;
            if (a.scale) {
                #pragma omp simd
                for (int l = 0; l < L; ++l) lr[l] = T(lr64[l] * sc);
            }
            // phase 2: the update, the surface at the new point, the statuses
            #pragma omp simd
            for (int l = 0; l < L; ++l) {
                p0[l] = x0[l]; p1[l] = x1[l]; fp[l] = f[l];
                const T e0 = g0[l], e1 = g1[l];
                T n0, n1;
                if (OPT <= 2) {          // SGD family; h1 = momentum, h2 = 1 - dampening
                    {
                        const T mu = h1[l];
                        const bool idle = no_buffer | (mu == T(0));
                        const T b0 = stt[l] ? std::fma(e0, h2[l], s0[l] * mu) : e0;
                        const T b1 = stt[l] ? std::fma(e1, h2[l], s1[l] * mu) : e1;
                        s0[l] = idle ? s0[l] : b0; s1[l] = idle ? s1[l] : b1;
                        stt[l] = idle ? stt[l] : 1;
                        T d0, d1;
                        if (OPT == 2 && !no_buffer_possible) { d0 = std::fma(s0[l], mu, e0); d1 = std::fma(s1[l], mu, e1); }
                        else { d0 = idle ? e0 : s0[l]; d1 = idle ? e1 : s1[l]; }
                        n0 = std::fma(d0, -lr[l], x0[l]); n1 = std::fma(d1, -lr[l], x1[l]);
                    }
                } else if (OPT == 3) {   // adagrad; h1 = eps; clr = lr / (1 + (t - 1) lr_decay) in float64
                    const T clr = T((lr64[l] * sc) / (1.0 + double(t - 1) * d64[l]));
                    const T sd0 = root[l] + h1[l], sd1 = root[L + l] + h1[l];
                    n0 = x0[l] - (e0 * clr) / sd0; n1 = x1[l] - (e1 * clr) / sd1;
                } else if (OPT == 4) {   // rmsprop; h3 = eps, h4 = momentum
                    const T av0 = root[l] + h3[l], av1 = root[L + l] + h3[l];
                    const bool plain = h4[l] == T(0);
                    const T m0 = q0[l] * h4[l] + e0 / av0, m1 = q1[l] * h4[l] + e1 / av1;
                    q0[l] = plain ? q0[l] : m0; q1[l] = plain ? q1[l] : m1;
                    n0 = plain ? x0[l] - (e0 * lr[l]) / av0 : std::fma(q0[l], -lr[l], x0[l]);
                    n1 = plain ? x1[l] - (e1 * lr[l]) / av1 : std::fma(q1[l], -lr[l], x1[l]);
                } else {                 // adam; h4 = eps; step size and bias correction in float64
                    const double b1t = a.table_index ? bc1t[l] : bc1_all, b2t = a.table_index ? bc2t[l] : bc2_all;
                    const T step_size = T((lr64[l] * sc) / b1t), bc2 = T(b2t);
                    const T den0 = root[l] / bc2 + h4[l], den1 = root[L + l] / bc2 + h4[l];
                    n0 = x0[l] - (s0[l] * step_size) / den0; n1 = x1[l] - (s1[l] * step_size) / den1;
                }
                // frozen (diverged) rows stay at their last finite point
                x0[l] = act[l] ? n0 : p0[l]; x1[l] = act[l] ? n1 : p1[l];
                T fv, gv0, gv1;
                surface_fg<T>(x0[l], x1[l], fv, gv0, gv1);
                const T gn = std::fma(gv1, gv1, gv0 * gv0);
                const T dx = x0[l] - cx, dy = x1[l] - cy;
                const bool inside = finite(fv) & finite(gn) & (std::fma(dy, dy, dx * dx) <= bsq);
                const bool out = !inside & (act[l] != 0);
                x0[l] = out ? p0[l] : x0[l]; x1[l] = out ? p1[l] : x1[l];
                f[l] = out ? fp[l] : fv; g0[l] = out ? T(0) : gv0; g1[l] = out ? T(0) : gv1;
                act[l] = out ? 0 : act[l]; run_[l] = out ? 0 : run_[l];
                stat[l] = out ? 2 : stat[l]; dat[l] = out ? t : dat[l];
                const bool done = (run_[l] != 0) & (gn <= gsq) & (std::fabs(f[l] - fp[l]) <= ftol * (T(1) + std::fabs(f[l])));
                run_[l] = done ? 0 : run_[l]; stat[l] = done ? 1 : stat[l]; cat[l] = done ? t : cat[l];
            }
        }
        for (int l = 0; l < w; ++l) {
            const int64_t r = r0 + l;
            X[2*r] = x0[l]; X[2*r+1] = x1[l]; F[r] = f[l]; G[2*r] = g0[l]; G[2*r+1] = g1[l];
            XP[2*r] = p0[l]; XP[2*r+1] = p1[l]; FP[r] = fp[l];
            S0[2*r] = s0[l]; S0[2*r+1] = s1[l]; S1[2*r] = u0[l]; S1[2*r+1] = u1[l];
            S2[2*r] = q0[l]; S2[2*r+1] = q1[l];
            a.running[r] = uint8_t(run_[l]); a.active[r] = uint8_t(act[l]); a.started[r] = uint8_t(stt[l]);
            a.status[r] = int8_t(stat[l]); a.conv_at[r] = cat[l]; a.div_at[r] = dat[l];
        }
    }
    _mm_setcsr(csr);
}

// rows [b_begin * LANES, b_end * LANES): the caller runs disjoint ranges on its own threads
extern "C" void optiviz_run(const Args* a, int32_t opt, int32_t float64, int64_t b_begin, int64_t b_end) {
    switch (opt * 2 + float64) {
__CASES__
    }
}
"""


def kernel_source(surface_code: str, optimizers: tuple[str, ...], float64: bool) -> str:
    """The translation unit for one surface, these optimizers and one dtype (each instance is
    ~0.2 s of compiling, so only those a simulator steps are built)."""
    d, t = (1, "double") if float64 else (0, "float")
    cases = "\n".join(f"        case {OPTIMIZER_IDS[o] * 2 + d}: run<{t}, {OPTIMIZER_IDS[o]}>(*a, b_begin, b_end); break;"
                      for o in sorted(set(optimizers), key=OPTIMIZER_IDS.get))
    return (_TEMPLATE.replace("__SURFACE__", surface_code).replace("__LANES__", str(LANES))
            .replace("__CASES__", cases))
