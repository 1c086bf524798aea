"""The model and its math: pure functions of arrays, importing nothing of the package but ``jaxwvae.losses``.

objectives (ELBO_W, ELBO_KL, WAE-MMD), lambda_rule (the adaptive λ and
its forecasters), models (the paper's MLP VAE), exclusion (over/underfit),
keys (random key streams), names (the names of the objectives, λ rules, forecasters and replica loops).
"""
