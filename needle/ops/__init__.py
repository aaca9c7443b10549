"""needle.ops: one module per op family; everything public is re-exported here."""

from .colorspace import *  # noqa: F401,F403
from .concat import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .logarithmic import *  # noqa: F401,F403
from .mathematic import *  # noqa: F401,F403
from .upsample import *  # noqa: F401,F403
