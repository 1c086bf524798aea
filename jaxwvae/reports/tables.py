"""The paper's Tables 1–3 under one name, for code written against ``jaxwvae.tables``.

Each table has its own module: :mod:`jaxwvae.reports.table1` (FID, and the
pictures), :mod:`jaxwvae.reports.table2` (classifier accuracy with
reconstructions) and :mod:`jaxwvae.reports.table3` (training loss); what they
share is in :mod:`jaxwvae.reports.shared`, and the FID of a run's replicas in
:mod:`jaxwvae.evaluation.replica_fid`. This module only re-exports their names.
"""

from jaxwvae.evaluation.replica_fid import (
    FID_SAMPLES,
    REPLICA_GROUP,
    feature_function,
    replica_fids,
    test_feature_stats,
)
from jaxwvae.reports.shared import (
    RUNTIME_FIELDS,
    TESTS_NOTE,
    mean_sd,
    run_variant,
    tests_markdown,
    variant_config,
)
from jaxwvae.reports.table1 import (
    TABLE1_CLAIMS,
    fid_ratios,
    fmt,
    kept_fids,
    table1,
    table1_markdown,
    table1_tests,
    write_pictures,
)
from jaxwvae.reports.table2 import (
    TABLE2_AUGMENT,
    TABLE2_CONDITIONS,
    TABLE2_NAMES,
    TABLE2_PAPER,
    TABLE2_SEEDS,
    TABLE2_SIZES,
    TABLE2_TEST_SIZE,
    best_replica,
    table2,
    table2_markdown,
    table2_tests,
)
from jaxwvae.reports.table3 import table3, table3_markdown, table3_row, table3_tests

__all__ = [
    "FID_SAMPLES", "REPLICA_GROUP", "feature_function", "replica_fids", "test_feature_stats",
    "RUNTIME_FIELDS", "TESTS_NOTE", "mean_sd", "run_variant", "tests_markdown", "variant_config",
    "TABLE1_CLAIMS", "fid_ratios", "fmt", "kept_fids", "table1", "table1_markdown", "table1_tests", "write_pictures",
    "TABLE2_AUGMENT", "TABLE2_CONDITIONS", "TABLE2_NAMES", "TABLE2_PAPER", "TABLE2_SEEDS", "TABLE2_SIZES",
    "TABLE2_TEST_SIZE", "best_replica", "table2", "table2_markdown", "table2_tests",
    "table3", "table3_markdown", "table3_row", "table3_tests",
]
