"""COBA-4k benchmark: 1 s of the Vogels & Abbott (2005) conductance-based network
(Brette et al. 2007 benchmark 1), neurojax vs Brian2 (runtime, cpp_standalone) and
BrainPy when they are installed (``pip install -e ".[bench]"``).

    python benchmarks/coba.py [--quick] [--n N] [--duration MS] [--repeats N] [--anchors LIST]

Build, compile and run times are reported separately, with peak memory; the rates are
checked against REFERENCES.md section 6 before any time is printed. The "floor" row is
the same scan with the synapses removed (neuron updates only): run time / floor is the
cost of synaptic propagation. Times on a shared machine are noisy: compare the ratios
of one run (the simulators are timed alternately), not absolute times.
"""

from __future__ import annotations

import sys

from _common import vogels_abbott_case

# REFERENCES.md section 6: 18.5 +- 1.5 Hz (numpy and NEST over seeds 0-2: 17.0-19.5 Hz);
# [15, 22] Hz leaves room for the seed-to-seed spread of a different random graph.
RATE_RANGE = (15.0, 22.0)


def main(argv=None):
    return vogels_abbott_case("coba", __doc__, argv, (6.0, 67.0), RATE_RANGE,
                              "REFERENCES.md section 6, 18.5 +- 1.5 Hz")


if __name__ == "__main__":
    main(sys.argv[1:])
