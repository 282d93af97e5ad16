"""Write your own plasticity rule: additive pair STDP with exponential traces.

The code of docs/guides/custom-plasticity.md, run as it stands by tests/test_guides.py
(`python docs/guides/custom_plasticity.py` prints what each part checks).
"""

# --8<-- [start:rule]
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

import neurojax as nj
from neurojax.connectivity.weights import DenseWeights
from neurojax.plasticity.abstract import container_weights, synapse_mask

jax.config.update("jax_enable_x64", True)  # the checks below compare to 1e-9


class PairSTDPState(eqx.Module):
    """Everything the rule changes during a run: it lives in `state.plastic[j]`."""

    weights: Float[Array, "post pre"]  # plastic weights, the container's layout
    x_pre: Float[Array, " pre"]  # presynaptic trace [dimensionless]
    x_post: Float[Array, " post"]  # postsynaptic trace [dimensionless]


class PairSTDP(nj.plasticity.AbstractPlasticity[PairSTDPState]):
    r"""Additive, all-to-all pair STDP (Song, Miller & Abbott 2000, without bounds):
    a pair with $\Delta t = t_\text{post} - t_\text{pre}$ changes the weight by
    $a_+ e^{-\Delta t/\tau_+}$ if $\Delta t \ge 0$ and by $-a_- e^{\Delta t/\tau_-}$
    otherwise. Computed with one trace per neuron, which decays exactly by
    $e^{-dt/\tau}$ per step and jumps by 1 at each spike. Dense projections only.

    **Arguments:**

    - `a_plus`: Potentiation amplitude [weight units].
    - `a_minus`: Depression amplitude [weight units].
    - `tau_plus`: Potentiation window [ms].
    - `tau_minus`: Depression window [ms].
    """

    a_plus: Float[Array, ""] = eqx.field(converter=jnp.asarray, default=0.01)
    a_minus: Float[Array, ""] = eqx.field(converter=jnp.asarray, default=0.012)
    tau_plus: Float[Array, ""] = eqx.field(converter=jnp.asarray, default=20.0)
    tau_minus: Float[Array, ""] = eqx.field(converter=jnp.asarray, default=20.0)
    # The state carries weights: `weights(state)` returns them and the network delivers them.
    changes_weights: ClassVar[bool] = True

    def init(self, structure: Any, weights: Array | None) -> PairSTDPState:
        w = container_weights(structure) if weights is None else weights  # (post, pre)
        n_post, n_pre = w.shape
        return PairSTDPState(weights=w, x_pre=jnp.zeros((n_pre,), w.dtype),
                             x_post=jnp.zeros((n_post,), w.dtype))

    def weights(self, state: PairSTDPState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        w = state.weights
        pre, post = pre.astype(w.dtype), post.astype(w.dtype)
        # Depression: each presynaptic spike meets the postsynaptic trace of earlier
        # spikes (this step's postsynaptic spikes not yet counted).
        dw = -self.a_minus * state.x_post[:, None] * pre[None, :]
        x_pre = state.x_pre + pre
        # Potentiation: each postsynaptic spike meets the presynaptic trace, this
        # step's presynaptic spikes included (a simultaneous pair has dt = 0).
        dw = dw + self.a_plus * post[:, None] * x_pre[None, :]
        w = jnp.where(synapse_mask(structure), w + dw, w)  # only existing synapses
        new = PairSTDPState(weights=w,
                            x_pre=x_pre * jnp.exp(-dt / self.tau_plus),
                            x_post=(state.x_post + post) * jnp.exp(-dt / self.tau_minus))
        return new, w  # deliver this step's spikes with the updated weights

    def check(self, structure: Any, dt: float, name: str) -> None:
        # Once per simulation, possibly with traced parameters: check types and shapes.
        if not isinstance(structure, DenseWeights):
            raise ValueError(f"projection {name!r}: PairSTDP needs a dense layout, got "
                             f"{type(structure).__name__}.")
        for field in ("a_plus", "a_minus", "tau_plus", "tau_minus"):
            if jnp.ndim(getattr(self, field)) != 0:
                raise ValueError(f"projection {name!r}: PairSTDP {field} must be a scalar.")
# --8<-- [end:rule]


# --8<-- [start:network]
def network(rule=None, n_pre=20, n_post=5):
    """Poisson sources onto Poisson "postsynaptic" cells through a plastic projection.
    A PoissonPopulation ignores its input, so the spike trains do not depend on the
    weights and the rule's result has a closed form."""
    pops = [nj.Population("pre", n_pre, nj.inputs.PoissonPopulation(rate=40.0)),
            nj.Population("post", n_post, nj.inputs.PoissonPopulation(rate=30.0))]
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=0.5,
                         synapse=nj.synapses.Delta(), plasticity=rule or PairSTDP())
    return nj.Network(pops, [proj]).build(jax.random.key(0))


def run(model, duration=200.0, dt=0.1, key=jax.random.key(1)):
    return nj.simulate(model, duration, dt, key=key,
                       record=nj.Record(spikes=["pre", "post"], every=10.0,
                                        mean_weights=["pre->post"]))


def closed_form(res, rule, w0, dt=0.1):
    """The weights after the run by the explicit double sum over spike pairs."""
    pre = np.asarray(res.spikes["pre"], float)  # (steps, n_pre)
    post = np.asarray(res.spikes["post"], float)
    steps = np.arange(pre.shape[0]) * dt
    lag = steps[:, None] - steps[None, :]  # t_post - t_pre for (post step, pre step)
    kernel = np.where(lag >= 0, float(rule.a_plus) * np.exp(-lag / float(rule.tau_plus)),
                      -float(rule.a_minus) * np.exp(lag / float(rule.tau_minus)))
    return w0 + post.T @ kernel @ pre  # (post, pre)
# --8<-- [end:network]


# --8<-- [start:transforms]
def final_mean_weight(model, a_plus):
    """The mean weight at the end of a run, as a function of the rule's `a_plus`
    (addressed by name, like any model parameter)."""
    res = nj.simulate(model.replace({"pre->post.plasticity.a_plus": a_plus}), 200.0, 0.1,
                      key=jax.random.key(1), record=nj.Record(spikes=()))
    return model.plastic_weights(res.state, "pre->post").mean()


def sweep(model, a_plus_values):
    """One compiled call for several learning rates: vmap over a rule parameter."""
    return jax.vmap(lambda a: final_mean_weight(model, a))(a_plus_values)


def gradient(model, a_plus=0.01):
    """d(mean final weight)/d(a_plus) by autodiff and by a central finite difference.
    The spike trains do not depend on the weights, so the path is smooth."""
    f = lambda a: final_mean_weight(model, a)
    h = 1e-4
    return jax.grad(f)(jnp.asarray(a_plus)), (f(a_plus + h) - f(a_plus - h)) / (2 * h)
# --8<-- [end:transforms]


if __name__ == "__main__":
    model = network()
    res = run(model)
    w = np.asarray(model.plastic_weights(res.state, "pre->post"))
    exact = closed_form(res, PairSTDP(), 0.5)
    print(f"largest |w - closed form| = {np.abs(w - exact).max():.2e} "
          f"(weights moved by up to {np.abs(exact - 0.5).max():.3f})")
    print("mean weight every 50 ms:", np.round(np.asarray(res.weights["pre->post.mean"])[4::5], 4))
    print("mean final weight vs a_plus:", np.asarray(sweep(model, jnp.array([0.0, 0.01, 0.02]))))
    g, fd = gradient(model)
    print(f"d mean w / d a_plus = {float(g):.6f} (finite difference {float(fd):.6f})")
