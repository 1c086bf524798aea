"""The math and the model: pure functions of arrays, importing nothing else of the package.

losses (W2², KL, T, MMD), objectives (ELBO_W, ELBO_KL, WAE-MMD), lambda_rule (the adaptive λ and
its forecasters), models (the paper's MLP VAE), stats (intervals and tests), exclusion (over/underfit),
keys (random key streams), names (the names of the objectives, λ rules, forecasters and replica loops).
"""
