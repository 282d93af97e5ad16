"""Training and fitting under biological constraints: constraint parameterisations
(Dale's law, DANNs, masks, bounds, freezing, low-rank factors), the `fit` loop (optax), costs besides the
task, gradient checks, recursive-least-squares (FORCE / PINning) training, and e-prop (online learning with eligibility traces)."""

from . import tasks as tasks
from .constraints import (
    AbstractConstraint as AbstractConstraint,
    Bounded as Bounded,
    DANN as DANN,
    Dale as Dale,
    Frozen as Frozen,
    LowRankFactors as LowRankFactors,
    Mask as Mask,
    Profile as Profile,
    constrain as constrain,
    constrain_weights as constrain_weights,
    resolve as resolve,
    trainable as trainable,
)
from .costs import (
    add_noise as add_noise,
    rate_cost as rate_cost,
    spike_count_cost as spike_count_cost,
    weight_l1 as weight_l1,
    weight_l2 as weight_l2,
    wiring_cost as wiring_cost,
)
from .eprop import eprop_loss as eprop_loss, eprop_run as eprop_run, leaky_readout as leaky_readout
from .decoders import Decoder as Decoder, decode as decode, fit_decoder as fit_decoder
from .fitting import FitResult as FitResult, fit as fit
from .rls import ForceResult as ForceResult, force as force, pvar as pvar
from .steady import SteadyStateFit as SteadyStateFit, fit_steady_states as fit_steady_states
from .gradcheck import GradCheck as GradCheck, GradCheckRow as GradCheckRow, check_grad as check_grad
