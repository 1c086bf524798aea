"""The names a sweep chooses among, each in one place, light enough for the command line to import.

The modules that implement them read these tuples (importing them would pull in JAX):

* :data:`OBJECTIVES`, the keys of :data:`jaxwvae.core.objectives.OBJECTIVES`, in its order;
* :data:`LAMBDA_RULES`, the rule constructors of the same names (:mod:`jaxwvae.core.lambda_rule`:
  ``fixed``, ``arima``; :mod:`jaxwvae.core.controllers`: ``pi``, ``geco``);
* :data:`FORECASTERS`, where the adaptive rule's forecast of T runs: ``device`` fused in the compiled
  step, ``host`` the same estimator in NumPy (:mod:`jaxwvae.core.lambda_rule` with ``xp=np``),
  ``statsmodels`` the reference ARIMA (:mod:`jaxwvae.forecast.statsmodels_rule`);
* :data:`PBT_FITNESS`, the validation fitness population-based training ranks members by;
* :data:`REPLICA_LOOPS`, how the compiled chunk runs the replicas (:func:`jaxwvae.engine.program.replica_loop`).
"""

OBJECTIVES = ("w", "kl", "wae")
LAMBDA_RULES = ("fixed", "arima", "pi", "geco")
FORECASTERS = ("device", "host", "statsmodels")
REPLICA_LOOPS = ("auto", "vmap", "map")
PBT_FITNESS = ("elbo", "rec", "fid")
PI_QUANTITIES = ("kl", "w2", "t_gap")  # what the pi rule may steer: the step metrics of these names
