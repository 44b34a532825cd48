"""Names the ServerApp, the ClientApp and the strategies agree on inside Flower messages."""

ARRAYS_KEY = "arrays"  # the ArrayRecord of weights, both directions
METRICS_KEY = "metrics"  # the MetricRecord of a reply
CONFIG_KEY = "config"  # the ConfigRecord of an instruction
PLANT_RECORD_KEY = "plant"  # the ConfigRecord a reply names its plant in
PLANT_ID_KEY = "plant-id"
NUM_EXAMPLES_KEY = "num-examples"
PERSONALIZE_ACTION = "personalize"  # message type "train.personalize"
FEATURE_STATE_KEY = "feature-state"  # ConfigRecord {"json": ...} of a personalization reply
# A classifier's calibration (not exchanged weights): evaluate metrics of each plant, and the
# ConfigRecord {CALIB_TEMPERATURE_KEY, CALIB_THRESHOLD_KEY} of a personalization reply.
CALIBRATION_KEY = "calibration"
CALIB_TEMPERATURE_KEY = "calib-temperature"
CALIB_THRESHOLD_KEY = "calib-threshold"
