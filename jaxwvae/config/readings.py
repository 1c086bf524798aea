"""The readings of the paper's λ schedule: each a set of config fields, for the λ study and the presets.

Section 3 prints an adaptive rule (λ₀ = 1, c = 0.05); Section 4 says λ "varies
uniformly between 0 and 20" and the best of 30 seeds is selected; the text leaves
open the bounds of the adaptive λ, its step, T or 2T inside β and whether the
adjusted ReLU (σ <= 1) is on. Every reading is ELBO_W; ``jaxwvae.reports.study`` runs
them all as one grid, ``jaxwvae.config`` offers the useful ones as presets.
"""

# name -> (what it reads in the paper, config fields)
READINGS = {
    "section3": ("(a) Section 3 as printed: adaptive, λ₀ = 1, c = 0.05",
                 {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.05}),
    "section4": ("(b) Section 4: λ fixed per seed, uniform on [0, 20]",
                 {"lambda_rule": "fixed", "lam": "uniform:0:20"}),
    "bounded": ("(c) adaptive, λ kept in [0, 20]",
                {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.05, "lambda_max": 20.0}),
    "c0.005": ("(d) adaptive, c = 0.005", {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.005}),
    "c0.0005": ("(d) adaptive, c = 0.0005", {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.0005}),
    "lam0_uniform": ("(e) adaptive, λ₀ uniform on [0, 20]",
                     {"lambda_rule": "arima", "lam": "uniform:0:20", "lambda_c": 0.05}),
    "sigma_cap": ("(f) adaptive with the adjusted ReLU (σ <= 1)",
                  {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.05, "sigma_max": 1.0}),
    "printed_2T": ("(g) adaptive with the printed 2T inside β",
                   {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.05, "lambda_t_scale": 2.0}),
    "fixed1": ("reference: λ = 1 fixed (plain ELBO_W)", {"lambda_rule": "fixed", "lam": "1"}),
}
