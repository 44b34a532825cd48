"""The standard recipe of each baseline: the hub publishes these beside the baseline models."""

from __future__ import annotations

from baselines.features.cmapss import CmapssFeatureConfig
from baselines.recipes.schema import (
    Baseline,
    DataContractRef,
    FederationKnobs,
    Hyperparameters,
    Int8Tolerance,
    MonitoringKnobs,
    PrivacyKnobs,
    Recipe,
    SplitProtocol,
)
from policies import Comparator, Gate, Scope, ScopeLevel

CMAPSS_RMSE_GATES: dict[str, float] = {"FD001": 13.9, "FD002": 24.6, "FD003": 13.9, "FD004": 25.6}


def cmapss_recipe() -> Recipe:
    """Return the standard C-MAPSS RUL recipe (1D-CNN over 30-cycle windows)."""
    features = CmapssFeatureConfig()
    return Recipe(
        name="cmapss-rul-cnn",
        version="1.0.0",
        baseline=Baseline.CMAPSS,
        task="rul_regression",
        description=(
            "Remaining useful life of turbofan engines from 30-cycle windows of 14 sensors, "
            "z-scored per operating condition; piecewise-linear target capped at 125 cycles."
        ),
        data_contract=DataContractRef(name="cmapss-raw", version="1.0.0"),
        preprocessing={
            "contract": "rows violating cmapss-raw are quarantined, never trained on",
            "operating_conditions": "leader clustering of settings / setting_scale",
            "normalization": "z-score per sensor per operating condition",
            "flat_sensors": "dropped when within-condition std < flat_rel_std * |mean|",
            "short_units": "front-padded by repeating the first normalized cycle",
        },
        features={"pipeline": "baselines.features.cmapss", **features.to_dict()},
        architecture={
            "kind": "cnn",
            "conv_channels": [16, 16, 16],
            "kernel_size": 9,
            "head_hidden": 64,
            "dropout": 0.5,
            "output": "rul_cycles",
        },
        hyperparameters=Hyperparameters(
            epochs=20,
            lr=1e-3,
            batch_size=256,
            weight_decay=0.0,
            seed=7,
            # One intra-op thread: this CNN's layers are too small to split, and with two
            # threads each op waits for both (FD003, 2 epochs, same minute: 2.8 s on one thread,
            # 8.8 s on two, 65 s on two while another job held a core). The held-out selection
            # below ran on one thread too.
            threads=1,
            # FD001 / FD003 have one operating condition and ~18k windows from 100 engines: the
            # CNN memorizes those trajectories, so Adam L2 1e-2 (held-out RMSE after 30 epochs
            # 14.5 / 15.1 against 18.0 / 17.1 without; 3e-2 gave 15.4 on FD001), kept although
            # FD003's official-test RMSE got worse with it (14.73 vs 14.13).
            # Epochs and the centralized ensemble (issue 3) were chosen on two folds of 20
            # held-out training units, never the test set; each held-out unit is cut at 10 random
            # points as the test units are, and its last window scored. Mean RMSE of the two
            # folds, FD001 / FD003, an ensemble of k copies taken as the mean over every k-subset
            # of 5-6 seeded copies; at most 120 copy-epochs (6 x the 81 s of one 20-epoch FD003
            # network on the shared 2-core machine = 486 s, inside the 10-minute budget):
            #   20 epochs: 1 copy 14.93 / 15.94; 6 copies 14.66 / 15.76
            #   30 epochs: 1 copy 14.83 / 15.58; 4 copies 14.58 / 15.44
            #   40 epochs: 1 copy 14.84 / 15.42; 3 copies 14.61 / 15.31 (chosen: best mean)
            # (an earlier one-fold check had found the curve flat after ~15 epochs; dropout 0.3
            # instead of 0.5 gave 15.71 vs 15.76 on FD003 with 5 copies at 20 epochs, kept 0.5).
            # FD003 then, 3 copies x 40 epochs, four folds of 20 held-out units (per fold):
            #   weight decay 1e-2: 17.28 13.35 13.33 13.31, mean 14.32
            #   weight decay 3e-3: 16.61 13.71 13.44 12.71, mean 14.12 (chosen: best mean,
            #     though two folds each way; 1e-3 gave 15.96 on folds 0-1 against 15.31)
            #   lr 3e-3: 15.32 and batch 128: 15.35 on folds 0-1, against 15.31: kept.
            # The ensemble is the published centralized model only: federated rounds need the
            # same network on every plant and exchange one copy's weights (three copies would
            # triple each round's upload), so campaigns train one copy and start from the first
            # copy of an ensemble parent (federation.apps.arrays.first_copy). On the line it costs
            # three networks per Shapley evaluation: node CPU per request 2.5 -> 5.3 ms, sustained
            # 420 -> 235 req/s on one core (benchmarks/results/serving.json). FD002 / FD004
            # (6 conditions, 3x the windows, ~220 s a network, far inside their gates) keep one
            # copy and the defaults: three copies would exceed the 10-minute budget.
            overrides={
                "FD001": {"weight_decay": 1e-2, "epochs": 40, "ensemble": 3},
                "FD003": {"weight_decay": 3e-3, "epochs": 40, "ensemble": 3},
            },
        ),
        split=SplitProtocol(
            kind="official_test_set",
            group_by="unit",
            description="train on train_FD00x; score each test unit's last window vs RUL_FD00x",
        ),
        metrics=["rmse", "phm08_score", "mae"],
        promotion_gates=[
            Gate(
                name=f"rmse_{k.lower()}", metric="validation.rmse", op=Comparator.LE,
                threshold=v, scope=Scope(level=ScopeLevel.PLANT, value=k),
            )
            for k, v in CMAPSS_RMSE_GATES.items()
        ],
        int8_tolerance=Int8Tolerance(metric="rmse", max_degradation=0.5, calibration_samples=512),
        plants=["FD001", "FD002", "FD003", "FD004"],
        federation=FederationKnobs(strategy="fedprox", proximal_mu=0.01, rounds=5, local_epochs=1),
        privacy=PrivacyKnobs(),
        # 500 logged windows per chunk; the reference is the first 2,000 (about 20 engines'
        # last windows at a fleet's cadence); k = 2 because k = 1 paged on stable new units.
        # CUSUM limits for one false alarm in 500 chunks over all sequential detectors.
        monitoring=MonitoringKnobs(
            chunk_size=500, reference_rows=2000, performance_k=2.0, false_alarm_rate=0.002
        ),
    )


def ai4i_recipe() -> Recipe:
    """Return the standard AI4I failure recipe (MLP on physical features, temperature-scaled)."""
    return Recipe(
        name="ai4i-failure-mlp",
        version="1.0.0",
        baseline=Baseline.AI4I,
        task="failure_classification",
        description=(
            "Machine failure from process readings plus power, temperature difference and "
            "tool wear x torque. Multi-task MLP: the failure modes are auxiliary training labels "
            "(never inputs); the served probability is the noisy-OR of the heat-dissipation, "
            "power and overstrain heads (TWF and RNF are random by construction), calibrated by "
            "temperature scaling."
        ),
        data_contract=DataContractRef(name="ai4i-raw", version="1.0.0"),
        preprocessing={
            "contract": "rows violating ai4i-raw are quarantined, never trained on",
            "labels_never_features": ["machine_failure", "twf", "hdf", "pwf", "osf", "rnf"],
            "normalization": "z-score of numeric and derived features",
        },
        features={
            "pipeline": "baselines.features.ai4i",
            "numeric": [
                "air_temperature_k",
                "process_temperature_k",
                "rotational_speed_rpm",
                "torque_nm",
                "tool_wear_min",
            ],
            "derived": {
                "power_w": "torque_nm * rotational_speed_rpm * 2*pi/60",
                "temp_diff_k": "process_temperature_k - air_temperature_k",
                "wear_torque": "tool_wear_min * torque_nm",
            },
            "categorical": {"type": ["L", "M", "H"]},
        },  # fmt: skip
        architecture={
            "kind": "mlp",
            "hidden": [128, 128],
            "dropout": 0.1,
            "auxiliary_targets": ["twf", "hdf", "pwf", "osf", "rnf"],
            "score_heads": ["hdf", "pwf", "osf"],
            "members": 3,
            "output": "calibrated_failure_probability",
        },
        # 300 epochs (5-fold CV on the non-test rows, threshold pooled over the other folds):
        # F1 0.801 vs 0.793 at 150, never lower in a fold; HDF/PWF/OSF recall 0.88/0.82/0.95.
        hyperparameters=Hyperparameters(
            # One thread: the layers are too small to split (see the C-MAPSS recipe).
            epochs=300, lr=2e-3, batch_size=128, weight_decay=1e-4, seed=7, threads=1
        ),
        # One validation split holds ~55 failures: in 5-fold CV on the non-test rows a threshold
        # set on one fold scored F1 0.764 +- 0.045 on the other folds, one set on four pooled
        # folds 0.792 +- 0.018. So the served model trains on all non-test rows and its
        # temperature and threshold come from 5-fold out-of-fold logits of the same recipe.
        calibration={
            "method": "temperature_scaling",
            "threshold": "max F1 on out-of-fold predictions of the non-test rows",
            "folds": 5,
        },
        split=SplitProtocol(
            kind="stratified_holdout",
            test_fraction=0.2,
            validation_fraction=0.2,
            stratify_on="machine_failure",
            seed=2020,
            description=(
                "stratified 80/20 holdout; the 80% trains the model, temperature and threshold "
                "come from 5-fold cross-fitting on it (federated rounds calibrate on the 20% "
                "validation part of each plant's train rows)"
            ),
        ),
        metrics=["f1", "pr_auc", "ece", "recall_by_mode"],
        promotion_gates=[
            Gate(name="f1", metric="validation.f1", op=Comparator.GE, threshold=0.80),
            Gate(name="pr_auc", metric="validation.pr_auc", op=Comparator.GE, threshold=0.85),
            Gate(name="ece", metric="validation.ece", op=Comparator.LE, threshold=0.03),
        ],
        int8_tolerance=Int8Tolerance(metric="f1", max_degradation=0.02, calibration_samples=512),
        plants=["L", "M", "H"],
        federation=FederationKnobs(strategy="fedprox", proximal_mu=0.01, rounds=5, local_epochs=2),
        privacy=PrivacyKnobs(),
        # tool wear and torque set the wear, overstrain and power failure modes: drift in
        # them may bring a failure mechanism CBPE never saw (concept shift suspected)
        monitoring=MonitoringKnobs(
            chunk_size=500,
            reference_rows=2000,
            performance_k=2.0,
            false_alarm_rate=0.002,
            failure_mode_features=["tool_wear_min", "torque_nm"],
        ),
    )


def get_recipe(baseline: str | Baseline) -> Recipe:
    """Return the standard recipe of a baseline.

    Raises
    ------
    ValueError
        If the baseline is unknown.
    """
    b = Baseline(baseline)
    return cmapss_recipe() if b is Baseline.CMAPSS else ai4i_recipe()
