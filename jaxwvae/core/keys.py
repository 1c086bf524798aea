"""Key streams: every random draw of a run comes from its seed's key, one stream per purpose.

A seed's key is ``PRNGKey(seed)``; a stream folds in its id, then (optionally) a counter such as
the step or the epoch, so no draw depends on another stream's use or on the other replicas.
The ids are fixed: changing one changes every result of that stream.
"""

import jax

INIT_STREAM = 0    # parameter initialisation (VAE, CNN classifier)
LAM_STREAM = 1     # λ₀ drawn from uniform:LO:HI
DATA_STREAM = 2    # the shuffle of epoch e
STEP_STREAM = 3    # the reparameterisation noise of step t
EVAL_STREAM = 4    # the noise of evaluation batch i
SAMPLE_STREAM = 7  # prior samples of a finished run (FID, pictures)
PBT_STREAM = 8     # population-based training: the selection and exploration of round r


def stream(key, stream_id: int, counter=None):
    """The key of one stream of ``key``, and of one ``counter`` value within it when given."""
    key = jax.random.fold_in(key, stream_id)
    return key if counter is None else jax.random.fold_in(key, counter)
