"""Training and fitting under biological constraints: constraint parameterisations
(Dale's law, DANNs, masks, bounds, freezing), the `fit` loop (optax), costs besides the
task, and gradient checks."""

from .constraints import (
    AbstractConstraint as AbstractConstraint,
    Bounded as Bounded,
    DANN as DANN,
    Dale as Dale,
    Frozen as Frozen,
    Mask as Mask,
    constrain as constrain,
    constrain_weights as constrain_weights,
    trainable as trainable,
)
from .fit import FitResult as FitResult, fit as fit
from .gradcheck import GradCheck as GradCheck, GradCheckRow as GradCheckRow, check_grad as check_grad
