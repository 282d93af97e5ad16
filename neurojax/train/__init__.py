"""Training and fitting: gradient checks (more, with the constraints and fitting loops,
to come)."""

from .gradcheck import GradCheck as GradCheck, GradCheckRow as GradCheckRow, check_grad as check_grad
