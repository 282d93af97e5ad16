"""The anchor simulators: the benchmark models written for Brian2 and BrainPy.

Each anchor runs in its own worker process (``python _anchors.py``, driven over
stdin/stdout by ``_common.Anchor``), so that

- Brian2's global device (runtime vs cpp_standalone) and BrainPy's global state never
  meet neurojax or each other;
- peak memory is measured per simulator (the worker's peak RSS, or the standalone
  binary's);
- a simulator that is not installed or fails reports why instead of failing the suite.

Protocol: the parent writes one JSON line ``{"sim", "case", "params"}``; the worker
builds and compiles, then answers ``{"status": "ok", "build_s", "compile_s", ...}`` or
``{"status": "unavailable", "reason"}``. Each further line ``"run"`` is answered with
``{"run_s", "rates_hz", "peak_mb"}`` for one run from the same initial state; ``"quit"``
ends the worker.

The models follow each simulator's own idiom (its connectivity sampler, its
integrator), with the parameters of the neurojax gallery; every run's rates are
reported, so the reader can see that the models agree before reading the times.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback

SIMULATORS = ("brian2-runtime", "brian2-cpp", "brainpy")


# ----------------------------------------------------------------------------- memory
def reset_peak_rss() -> None:
    """Reset this process's peak RSS (Linux: writing 5 to clear_refs resets VmHWM to the
    current RSS). Freed heap is first handed back to the OS (glibc `malloc_trim`): else
    memory freed by an earlier run stays resident and hides a smaller later peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process since the last reset [MB], or None."""
    return _status_mb("VmHWM")


def rss_mb() -> float | None:
    """Current resident set size of this process [MB], or None."""
    return _status_mb("VmRSS")


# ----------------------------------------------------------------------------- shared
def fixed_in_degree(k, n_pre, n_post, same, seed):
    """Synapse lists with in-degree `k`, sampled by neurojax's own builder (numpy), so
    every simulator gets the same statistics as neurojax."""
    import jax

    from neurojax.connectivity.builders import FixedInDegree

    syn = FixedInDegree(int(k)).sample(jax.random.key(seed), n_pre, n_post, same)
    return syn.pre, syn.post


def _populations(case, p):
    """(n_E, n_I) of a case."""
    if case == "brunel":
        return p["n_e"], p["n_e"] // 4
    n_e = int(round(0.8 * p["n"]))
    return n_e, p["n"] - n_e


# ----------------------------------------------------------------------------- Brian2
class Brian2Runner:
    """COBA, CUBA, Brunel and fixed in-degree COBA in Brian2, on the runtime target
    (Cython code generation; numpy if Cython is missing) or the cpp_standalone device."""

    def __init__(self, case, p, standalone):
        import brian2 as b2

        self.b2 = b2
        self.standalone = standalone
        self.case = case
        self.p = p
        b2.prefs.logging.console_log_level = "ERROR"
        self.info = {}
        if standalone:
            self.dir = tempfile.mkdtemp(prefix=f"brian2_{case}_")
            b2.set_device("cpp_standalone", directory=self.dir, build_on_run=False)
            if os.path.exists("/usr/bin/time"):
                # The binary's own peak RSS (not the compiler's): GNU time writes it.
                self.rss_file = os.path.join(self.dir, "maxrss.txt")
                b2.prefs.devices.cpp_standalone.run_cmd_unix = [
                    "/usr/bin/time", "-f", "%M", "-o", self.rss_file, "./main"]
            else:
                self.rss_file = None
        else:
            try:
                import Cython  # noqa: F401

                b2.prefs.codegen.target = "cython"
            except ImportError:
                b2.prefs.codegen.target = "numpy"
            self.info["codegen"] = b2.prefs.codegen.target
        b2.defaultclock.dt = p["dt"] * b2.ms
        b2.seed(p.get("seed", 0))

        t0 = time.perf_counter()
        getattr(self, "_build_" + ("coba" if case in ("coba", "scaling", "sweep") else case))()
        self.build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        if standalone:
            self.net.run(p["duration"] * b2.ms)
            b2.device.build(directory=self.dir, compile=True, run=False, with_output=False)
        else:
            # A zero-length run generates and compiles every code object (Cython
            # modules are cached in ~/.cython between processes: say so).
            self.net.run(0 * b2.ms)
            self.net.store("init")
        self.compile_s = time.perf_counter() - t0

    # Models ---------------------------------------------------------------
    def _connect(self, syn, k_or_p, n_pre, n_post, same):
        if self.case in ("coba", "cuba", "sweep"):
            syn.connect(condition="i != j" if same else None, p=k_or_p)
        else:
            pre, post = fixed_in_degree(k_or_p, n_pre, n_post, same, self.p.get("seed", 0))
            syn.connect(i=pre, j=post)

    def _build_coba(self):
        b2, p = self.b2, self.p
        ms, mV, nS, pF = b2.ms, b2.mV, b2.nS, b2.pF
        n_e, n_i = _populations(self.case, p)
        ns = {"gl": 10 * nS, "Cm": 200 * pF, "El": -60 * mV, "Ee": 0 * mV, "Ei": -80 * mV,
              "taue": 5 * ms, "taui": 10 * ms, "we": p["w_e"] * nS, "wi": p["w_i"] * nS}
        eqs = """dv/dt = (gl*(El-v) + ge*(Ee-v) + gi*(Ei-v))/Cm : volt (unless refractory)
                 dge/dt = -ge/taue : siemens
                 dgi/dt = -gi/taui : siemens"""
        P = b2.NeuronGroup(n_e + n_i, eqs, threshold="v>-50*mV", reset="v=-60*mV",
                           refractory=5 * ms, method="exponential_euler", namespace=ns)
        P.v = "-65*mV + 5*mV*randn()"
        P.ge = "(40 + 15*randn())*nS"
        P.gi = "(200 + 120*randn())*nS"
        self.ns = ns  # the sweep changes `we` between runs (read at each run start)
        self._recurrent(P, n_e, n_i, "ge += we", "gi += wi", ns)

    def _build_cuba(self):
        b2, p = self.b2, self.p
        ms, mV = b2.ms, b2.mV
        n_e, n_i = _populations(self.case, p)
        # Brian's CUBA example: voltage kicks of w / g_L (16.2 pA / 10 nS = 1.62 mV).
        ns = {"we": p["w_e"] / 10.0 * mV, "wi": p["w_i"] / 10.0 * mV}
        eqs = """dv/dt = (ge + gi - (v + 49*mV))/(20*ms) : volt (unless refractory)
                 dge/dt = -ge/(5*ms) : volt
                 dgi/dt = -gi/(10*ms) : volt"""
        P = b2.NeuronGroup(n_e + n_i, eqs, threshold="v>-50*mV", reset="v=-60*mV",
                           refractory=5 * ms, method="exact", namespace=ns)
        P.v = "-60*mV + 10*mV*rand()"
        self._recurrent(P, n_e, n_i, "ge += we", "gi += wi", ns)

    def _recurrent(self, P, n_e, n_i, on_e, on_i, ns):
        b2, p = self.b2, self.p
        Pe, Pi = P[:n_e], P[n_e:]
        syns = []
        for pre, code, k_or_p in ((Pe, on_e, p.get("k_e", p.get("p"))),
                                  (Pi, on_i, p.get("k_i", p.get("p")))):
            for post in (Pe, Pi):
                s = b2.Synapses(pre, post, on_pre=code, namespace=ns)
                self._connect(s, k_or_p, len(pre), len(post), pre is post)
                syns.append(s)
        self._monitors(Pe, Pi, n_e, n_i)
        self.net = b2.Network(P, *syns, self.mon_e, self.mon_i)

    def _build_brunel(self):
        b2, p = self.b2, self.p
        ms, mV = b2.ms, b2.mV
        n_e, n_i = _populations(self.case, p)
        c_e = p["c_e"]
        j = p["j"] * mV
        nu_thr = 20.0 / (p["j"] * c_e * 20.0) * 1e3  # [Hz]
        P = b2.NeuronGroup(n_e + n_i, "dv/dt = -v/(20*ms) : volt (unless refractory)",
                           threshold="v>=20*mV", reset="v=10*mV", refractory=2 * ms,
                           method="exact")
        P.v = "20*mV*rand()"
        Pe, Pi = P[:n_e], P[n_e:]
        syns = []
        for pre, w, k in ((Pe, j, c_e), (Pi, -p["g"] * j, c_e // 4)):
            for post in (Pe, Pi):
                s = b2.Synapses(pre, post, on_pre="v += w", delay=p["delay"] * ms,
                                namespace={"w": w})
                self._connect(s, k, len(pre), len(post), pre is post)
                syns.append(s)
        drive = b2.PoissonInput(P, "v", N=c_e, rate=p["eta"] * nu_thr * b2.Hz, weight=j)
        self._monitors(Pe, Pi, n_e, n_i)
        self.net = b2.Network(P, *syns, drive, self.mon_e, self.mon_i)

    # Plastic models (benchmarks/plasticity.py), in Brian2's own STDP idiom: per-synapse
    # weights, event-driven traces, clipping in on_pre / on_post.
    def _build_coba_stdp(self):
        """COBA with pair STDP on E->E (A+ = 0.01 w_max, A- = 1.05 A+, 20 ms, w_max = 2 w_e)."""
        b2, p = self.b2, self.p
        ms, mV, nS, pF = b2.ms, b2.mV, b2.nS, b2.pF
        n_e, n_i = _populations("coba", p)
        w_max = 2 * p["w_e"] * nS
        ns = {"gl": 10 * nS, "Cm": 200 * pF, "El": -60 * mV, "Ee": 0 * mV, "Ei": -80 * mV,
              "taue": 5 * ms, "taui": 10 * ms, "we": p["w_e"] * nS, "wi": p["w_i"] * nS,
              "wmax": w_max, "taupre": 20 * ms, "taupost": 20 * ms,
              "dApre": 0.01 * w_max, "dApost": -0.0105 * w_max}
        eqs = """dv/dt = (gl*(El-v) + ge*(Ee-v) + gi*(Ei-v))/Cm : volt (unless refractory)
                 dge/dt = -ge/taue : siemens
                 dgi/dt = -gi/taui : siemens"""
        P = b2.NeuronGroup(n_e + n_i, eqs, threshold="v>-50*mV", reset="v=-60*mV",
                           refractory=5 * ms, method="exponential_euler", namespace=ns)
        P.v = "-65*mV + 5*mV*randn()"
        P.ge = "(40 + 15*randn())*nS"
        P.gi = "(200 + 120*randn())*nS"
        Pe, Pi = P[:n_e], P[n_e:]
        ee = b2.Synapses(Pe, Pe, """w : siemens
                                    dApre/dt = -Apre/taupre : siemens (event-driven)
                                    dApost/dt = -Apost/taupost : siemens (event-driven)""",
                         on_pre="""ge += w
                                   Apre += dApre
                                   w = clip(w + Apost, 0*nS, wmax)""",
                         on_post="""Apost += dApost
                                    w = clip(w + Apre, 0*nS, wmax)""", namespace=ns)
        ee.connect(condition="i != j", p=p["p"])
        ee.w = "we"
        syns = [ee]
        for pre, post, code in ((Pe, Pi, "ge += we"), (Pi, Pe, "gi += wi"), (Pi, Pi, "gi += wi")):
            s = b2.Synapses(pre, post, on_pre=code, namespace=ns)
            s.connect(condition="i != j" if pre is post else None, p=p["p"])
            syns.append(s)
        self._monitors(Pe, Pi, n_e, n_i)
        self.net = b2.Network(P, *syns, self.mon_e, self.mon_i)

    def _build_song_abbott(self):
        """Brian2's examples/synapses/STDP.py (Song, Miller & Abbott 2000); the rates are
        reported as E = the output neuron, I = the inputs."""
        b2, p = self.b2, self.p
        ms, mV = b2.ms, b2.mV
        gmax = 0.01
        ns = {"taum": 10 * ms, "taupre": 20 * ms, "taupost": 20 * ms, "Ee": 0 * mV,
              "vt": -54 * mV, "vr": -60 * mV, "El": -74 * mV, "taue": 5 * ms, "gmax": gmax,
              "dApre": 0.01 * gmax, "dApost": -0.01 * 1.05 * gmax}
        inputs = b2.PoissonGroup(p["n_in"], rates=p["rate"] * b2.Hz)
        out = b2.NeuronGroup(1, """dv/dt = (ge * (Ee-vr) + El - v) / taum : volt
                                   dge/dt = -ge / taue : 1""",
                             threshold="v>vt", reset="v = vr", method="euler", namespace=ns)
        out.v = -60 * mV
        S = b2.Synapses(inputs, out, """w : 1
                                        dApre/dt = -Apre / taupre : 1 (event-driven)
                                        dApost/dt = -Apost / taupost : 1 (event-driven)""",
                        on_pre="""ge += w
                                  Apre += dApre
                                  w = clip(w + Apost, 0, gmax)""",
                        on_post="""Apost += dApost
                                   w = clip(w + Apre, 0, gmax)""", namespace=ns)
        S.connect()
        S.w = "rand() * gmax"
        self._monitors(out, inputs, 1, p["n_in"])
        self.net = b2.Network(inputs, out, S, self.mon_e, self.mon_i)

    def _build_vogels2011(self):
        """Brian2's examples/frompapers/Vogels_et_al_2011.py with the plasticity on from
        the start (eta = 0.01, rho0 = 3 Hz) and V ~ U(-60, -50) mV."""
        b2, p = self.b2, self.p
        ms, mV, nS, pF, pA = b2.ms, b2.mV, b2.nS, b2.pF, b2.pA
        n_e, n_i = _populations("vogels2011", p)
        tau_stdp = 20 * ms
        ns = {"gl": 10 * nS, "el": -60 * mV, "er": -80 * mV, "vt": -50 * mV, "memc": 200 * pF,
              "bgcurrent": 200 * pA, "tau_ampa": 5 * ms, "tau_gaba": 10 * ms,
              "tau_stdp": tau_stdp, "eta": 0.01, "alpha": 3 * b2.Hz * tau_stdp * 2, "gmax": 100}
        eqs = """dv/dt=(-gl*(v-el)-(g_ampa*v+g_gaba*(v-er))+bgcurrent)/memc : volt (unless refractory)
                 dg_ampa/dt = -g_ampa/tau_ampa : siemens
                 dg_gaba/dt = -g_gaba/tau_gaba : siemens"""
        P = b2.NeuronGroup(n_e + n_i, eqs, threshold="v > vt", reset="v = el",
                           refractory=5 * ms, method="euler", namespace=ns)
        P.v = "-60*mV + 10*mV*rand()"
        Pe, Pi = P[:n_e], P[n_e:]
        con_e = b2.Synapses(Pe, P, on_pre="g_ampa += 0.3*nS", namespace=ns)
        con_e.connect(p=p["p"])
        con_ii = b2.Synapses(Pi, Pi, on_pre="g_gaba += 3*nS", namespace=ns)
        con_ii.connect(p=p["p"])
        con_ie = b2.Synapses(Pi, Pe, """w : 1
                                        dApre/dt=-Apre/tau_stdp : 1 (event-driven)
                                        dApost/dt=-Apost/tau_stdp : 1 (event-driven)""",
                             on_pre="""Apre += 1.
                                       w = clip(w+(Apost-alpha)*eta, 0, gmax)
                                       g_gaba += w*nS""",
                             on_post="""Apost += 1.
                                        w = clip(w+Apre*eta, 0, gmax)""", namespace=ns)
        con_ie.connect(p=p["p"])
        con_ie.w = 1e-10
        self._monitors(Pe, Pi, n_e, n_i)
        self.net = b2.Network(P, con_e, con_ii, con_ie, self.mon_e, self.mon_i)

    def _monitors(self, Pe, Pi, n_e, n_i):
        # Spike times are kept only when the rate must skip an initial transient.
        keep = self.p.get("skip_ms", 0.0) > 0.0
        self.mon_e = self.b2.SpikeMonitor(Pe, record=keep)
        self.mon_i = self.b2.SpikeMonitor(Pi, record=keep)
        self.sizes = (n_e, n_i)

    # Runs -----------------------------------------------------------------
    def run(self):
        if self.case == "sweep":
            return self._run_sweep()
        b2, p = self.b2, self.p
        peak = None
        if self.standalone:
            t0 = time.perf_counter()
            b2.device.run(directory=self.dir, with_output=False)
            # The run is the binary's simulation loop, as for the other simulators; the
            # process wall time also starts the binary and loads and writes its arrays.
            self.info["run_wall_s"] = time.perf_counter() - t0
            run_s = b2.device._last_run_time
            if self.rss_file and os.path.exists(self.rss_file):
                with open(self.rss_file) as f:
                    peak = int(f.read().split()[-1]) / 1024.0
        else:
            self.net.restore("init")
            reset_peak_rss()
            t0 = time.perf_counter()
            self.net.run(p["duration"] * b2.ms)
            run_s = time.perf_counter() - t0
            peak = peak_rss_mb()
        skip = p.get("skip_ms", 0.0)
        sec = (p["duration"] - skip) * 1e-3
        if skip > 0.0:
            counts = tuple(int((m.t / b2.ms >= skip).sum()) for m in (self.mon_e, self.mon_i))
        else:
            counts = (int(self.mon_e.num_spikes), int(self.mon_i.num_spikes))
        rates = {"E": counts[0] / self.sizes[0] / sec, "I": counts[1] / self.sizes[1] / sec}
        return {"run_s": run_s, "rates_hz": rates, "peak_mb": peak, **self.info}

    def _run_sweep(self):
        """The Brian2 way to sweep: one network, restored and re-run per weight (the
        runtime target reads the namespace at each run, so nothing recompiles)."""
        b2, p = self.b2, self.p
        reset_peak_rss()
        counts = []
        t0 = time.perf_counter()
        for w in p["weights"]:
            self.net.restore("init")
            self.ns["we"] = w * b2.nS
            self.net.run(p["duration"] * b2.ms)
            counts.append((int(self.mon_e.num_spikes), int(self.mon_i.num_spikes)))
        run_s = time.perf_counter() - t0
        sec = p["duration"] * 1e-3
        rates = {"E": sum(c[0] for c in counts) / len(counts) / self.sizes[0] / sec,
                 "I": sum(c[1] for c in counts) / len(counts) / self.sizes[1] / sec}
        return {"run_s": run_s, "rates_hz": rates, "peak_mb": peak_rss_mb(),
                "rates_e_hz": [c[0] / self.sizes[0] / sec for c in counts], **self.info}


# ----------------------------------------------------------------------------- BrainPy
class BrainPyRunner:
    """The same models in BrainPy 2 (`brainpy.dyn`, event-driven CSR projections, which
    need numba on CPU), run as one jitted `bm.for_loop`."""

    def __init__(self, case, p):
        import brainpy as bp
        import brainpy.math as bm
        import numba  # noqa: F401  (BrainPy's CPU event kernels need it; fail clearly)

        self.bp, self.bm, self.p, self.case = bp, bm, p, case
        bm.set_platform("cpu")
        bm.set_dt(p["dt"])
        bm.random.seed(p.get("seed", 0))
        t0 = time.perf_counter()
        self.net = self._build()
        self.vars = self.net.vars().unique()
        self.initial = {k: bm.as_jax(v.value) for k, v in self.vars.items()}
        self.build_s = time.perf_counter() - t0
        n_steps = int(round(p["duration"] / p["dt"]))
        indices = bm.arange(n_steps)

        net = self.net

        def step(i):
            net.step_run(i)
            return net.E.spike.sum(), net.I.spike.sum()

        self._run = bm.jit(lambda: bm.for_loop(step, indices))
        # BrainPy compiles on the first call: compile time = first call - a later call.
        first = self._timed()[0]
        self.compile_s = max(first - self._timed()[0], 0.0)

    def _build(self):
        bp, bm, p, case = self.bp, self.bm, self.p, self.case
        n_e, n_i = _populations(case, p)
        seed = p.get("seed", 0)

        def conn(k_or_p, n_pre, n_post, same, s):
            if case in ("coba", "cuba"):
                return bp.conn.FixedProb(k_or_p, pre=n_pre, post=n_post, include_self=not same, seed=s)
            return bp.conn.FixedPreNum(int(k_or_p), pre=n_pre, post=n_post, include_self=not same, seed=s)

        class Net(bp.DynSysGroup):
            def __init__(self):
                super().__init__()
                if case == "brunel":
                    pars = dict(V_rest=0.0, V_th=20.0, V_reset=10.0, tau=20.0, tau_ref=2.0,
                                V_initializer=bp.init.Uniform(0.0, 20.0))
                elif case == "cuba":
                    pars = dict(V_rest=-49.0, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0,
                                V_initializer=bp.init.Uniform(-60.0, -50.0))
                else:
                    pars = dict(V_rest=-60.0, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0,
                                V_initializer=bp.init.Normal(-65.0, 5.0))
                self.E = bp.dyn.LifRef(n_e, **pars)
                self.I = bp.dyn.LifRef(n_i, **pars)
                self.projs = []
                s = seed
                if case == "brunel":
                    for pre, w, k in ((self.E, p["j"], p["c_e"]), (self.I, -p["g"] * p["j"], p["c_e"] // 4)):
                        for post in (self.E, self.I):
                            s += 1
                            c = conn(k, pre.num, post.num, pre is post, s)
                            self.projs.append(bp.dyn.FullProjDelta(
                                pre, p["delay"], bp.dnn.EventCSRLinear(c, w), post))
                    # External Poisson kicks as a delta input, which LifRef discards
                    # during refractoriness like the reference (bp.dyn.PoissonInput adds
                    # to V directly, so refractory neurons would integrate it: ~42 Hz).
                    nu_ext = p["eta"] * 20.0 / (p["j"] * p["c_e"] * 20.0) * 1e3  # [Hz]
                    prob = nu_ext * p["dt"] * 1e-3
                    for pop in (self.E, self.I):
                        pop.add_inp_fun(
                            "poisson",
                            lambda n=pop.num: bm.random.binomial(p["c_e"], prob, n) * p["j"],
                            category="delta")
                else:
                    k_e = p.get("k_e", p.get("p"))
                    k_i = p.get("k_i", p.get("p"))
                    if case == "cuba":
                        # Current in mV (R = 1): w / g_L = 16.2 pA / 10 nS = 1.62 mV.
                        outs = (bp.dyn.CUBA.desc(), bp.dyn.CUBA.desc())
                        ws = (p["w_e"] / 10.0, p["w_i"] / 10.0)
                    else:
                        # Conductance in units of g_L (R = 1): 6 nS / 10 nS = 0.6.
                        outs = (bp.dyn.COBA.desc(E=0.0), bp.dyn.COBA.desc(E=-80.0))
                        ws = (p["w_e"] / 10.0, p["w_i"] / 10.0)
                    for pre, w, k, tau, out in ((self.E, ws[0], k_e, 5.0, outs[0]),
                                                (self.I, ws[1], k_i, 10.0, outs[1])):
                        for post in (self.E, self.I):
                            s += 1
                            c = conn(k, pre.num, post.num, pre is post, s)
                            self.projs.append(bp.dyn.FullProjAlignPostMg(
                                pre=pre, delay=None, comm=bp.dnn.EventCSRLinear(c, w),
                                syn=bp.dyn.Expon.desc(post.num, tau=tau), out=out, post=post))

            def update(self):
                for proj in self.projs:
                    proj()
                self.E()
                self.I()

        net = Net()
        if case in ("coba", "scaling"):
            # The gallery's initial conductances (in units of g_L): N(4, 1.5), N(20, 12).
            for proj in net.projs:
                g = proj.syn.g
                mean, sd = (4.0, 1.5) if proj.pre is net.E else (20.0, 12.0)
                g.value = bm.random.normal(mean, sd, g.shape)
        return net

    def _timed(self):
        for k, v in self.vars.items():
            v.value = self.initial[k]
        t0 = time.perf_counter()
        counts = self._run()
        self.bm.as_jax(counts[0]).block_until_ready()
        return time.perf_counter() - t0, counts

    def run(self):
        reset_peak_rss()
        run_s, counts = self._timed()
        peak = peak_rss_mb()
        n_e, n_i = _populations(self.case, self.p)
        skip = self.p.get("skip_ms", 0.0)
        first = int(round(skip / self.p["dt"]))
        sec = (self.p["duration"] - skip) * 1e-3
        rates = {"E": float(counts[0][first:].sum()) / n_e / sec,
                 "I": float(counts[1][first:].sum()) / n_i / sec}
        return {"run_s": run_s, "rates_hz": rates, "peak_mb": peak}


# ----------------------------------------------------------------------------- worker
def _start(sim, case, params):
    if case == "sweep" and sim != "brian2-runtime":
        raise ValueError(f"the sweep anchor is a Brian2 runtime loop; {sim} is not run here")
    if sim == "brian2-runtime":
        return Brian2Runner(case, params, standalone=False)
    if sim == "brian2-cpp":
        return Brian2Runner(case, params, standalone=True)
    if sim == "brainpy":
        return BrainPyRunner(case, params)
    raise ValueError(f"unknown simulator {sim!r}")


def _version(sim):
    try:
        if sim.startswith("brian2"):
            import brian2

            return brian2.__version__
        import brainpy

        return brainpy.__version__
    except Exception:
        return None


def worker() -> None:
    # Simulators print to stdout; keep it for the protocol only.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")

    req = json.loads(sys.stdin.readline())
    try:
        runner = _start(req["sim"], req["case"], req["params"])
    except ImportError as e:
        send({"status": "unavailable", "reason": f"not installed ({e})"})
        return
    except Exception as e:
        traceback.print_exc()
        send({"status": "unavailable", "reason": f"failed: {type(e).__name__}: {e}"[:300]})
        return
    send({"status": "ok", "build_s": runner.build_s, "compile_s": runner.compile_s,
          "version": _version(req["sim"])})
    for line in sys.stdin:
        if line.strip() != "run":
            break
        try:
            send(runner.run())
        except Exception as e:
            traceback.print_exc()
            send({"error": f"{type(e).__name__}: {e}"[:300]})
            break


if __name__ == "__main__":
    worker()
