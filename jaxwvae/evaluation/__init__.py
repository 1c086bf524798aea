"""Evaluation of finished runs: FID, the small CNN (features and Table 2), InceptionV3, sampling.

Never imports training (replica, forecast, engine): it reads parameters from a run folder's checkpoints.
"""
