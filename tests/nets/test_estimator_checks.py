"""scikit-learn's own estimator checks, run on both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sknet import MLPClassifier, MLPRegressor

# Mini-batch training in float32: weighting a sample by k and repeating it k
# times give the same loss only up to float32 rounding (measured: ~3e-7
# relative differences), below these checks' rtol of 1e-7; with more samples
# than one batch the batches differ too. No float32 SGD-trained net can pass.
_FLOAT32_WEIGHT_EQUIVALENCE = (
    "weighted and repeated samples agree only to float32 rounding, below the check's rtol=1e-7"
)
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": _FLOAT32_WEIGHT_EQUIVALENCE,
    "check_sample_weight_equivalence_on_sparse_data": _FLOAT32_WEIGHT_EQUIVALENCE,
}


@parametrize_with_checks(
    [MLPClassifier(max_epochs=30, lr=1e-2, random_state=0, device="cpu"),
     MLPRegressor(max_epochs=30, lr=1e-2, random_state=0, device="cpu")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
