"""The model and its math: pure functions of arrays, importing nothing of the package but ``jaxwvae.losses``.

objectives (ELBO_W, ELBO_KL, WAE-MMD), lambda_rule (the paper's adaptive λ and its forecaster),
controllers (the pi and geco λ rules), models (the paper's MLP VAE), pbt (population-based
training's selection and perturbation), keys (random key streams), names (the names of the
objectives, λ rules, forecasters, fitnesses and replica loops).
"""
