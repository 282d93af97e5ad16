"""Training under constraints: Dale's law and masks as parameterisations, `fit`, costs.

The code of docs/guides/training.md, run as it stands by tests/test_guides.py
(`python docs/guides/training.py`).
"""

import tempfile
from pathlib import Path

# --8<-- [start:constrain]
import jax
import jax.numpy as jnp
import numpy as np
import optax

import neurojax as nj

units = nj.neurons.FiringRate(tau=10.0, transfer=nj.neurons.ReLU())
E = nj.Population("E", 16, units)
I = nj.Population("I", 4, units)
exc = nj.Projection("E", ["E", "I"], nj.connectivity.FixedProbability(0.5), weight=0.05,
                    layout=nj.connectivity.Sparse())           # event-driven table
inh = nj.Projection("I", ["E", "I"], nj.connectivity.AllToAll(), weight=-0.3,
                    layout=nj.connectivity.Dense())            # (post, pre) matrix
drive = nj.inputs.Constant("E", amplitude=1.0)
model = nj.Network([E, I], [exc, inh], inputs=[drive]).build(jax.random.key(0))

model = nj.train.constrain(model, {
    "E->*": nj.train.Dale(+1),     # excitatory: every outgoing weight >= 0
    "I->*": nj.train.Dale(-1),     # inhibitory: every outgoing weight <= 0
})
print(sorted(model.params()))      # "E->E.weight.free", ... what an optimiser trains
# --8<-- [end:constrain]

# --8<-- [start:fit]
TARGET = 2.0  # [rate units] the E population's mean rate that the fit aims at


def loss(model, trial, key):
    """One trial: the mean E rate over the last 20 ms against the target, plus an
    energy cost on both populations."""
    # A rate unit's output is its rate, recorded as a float at every step.
    res = nj.simulate(model, 50.0, 1.0, key=key, record=nj.Record(spikes=["E", "I"]))
    rate_e = jnp.mean(res.spikes["E"][-20:])
    energy = nj.train.rate_cost(jnp.concatenate([res.spikes["E"], res.spikes["I"]], axis=1))
    return (rate_e - trial) ** 2 + 1e-2 * energy


trials = jnp.full((8,), TARGET)            # data: a leading trial axis
checkpoint = Path(tempfile.mkdtemp()) / "guide.eqx"
result = nj.train.fit(
    model, loss, trials, optax.adam(0.05), steps=60, key=jax.random.key(1),
    batch_size=4, eval_data=trials, eval_every=20,
    trainable=nj.train.trainable(model, "*.weight*"),   # weights only, not tau
    checkpoint=checkpoint, progress=False,
)
trained = result.model
print(result.losses[0], result.losses[-1], result.eval_losses)
# --8<-- [end:fit]

# --8<-- [start:check]
def signs_hold(model):
    """Every E->* weight >= 0 and every I->* weight <= 0."""
    ok = True
    for proj in model.projections:
        w = np.asarray(proj.weights.matrix())
        ok &= bool(np.all(w >= 0) if proj.name.startswith("E->") else np.all(w <= 0))
    return ok


plain = nj.train.resolve(trained)   # the trained weights in plain containers
# --8<-- [end:check]
