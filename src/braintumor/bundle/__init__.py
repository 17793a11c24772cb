"""The shipped artifact: a model bundle.

Modules (one job each):
    create       a bundle from training runs (``from_run`` builds it in memory); may fit the
                 region-feature forest with :mod:`braintumor.training.region_forest`
    store        verified reading of a bundle folder/zip against its sha256 manifest
    checks       model cards read from a bundle; which models can work together
    load         load a bundle (safetensors only), describe one, default packaged bundle lookup
    forest       region-feature random forest as safetensors + JSON; numpy predictor
    input_check  the training data's input profile and the distance of a new input to it
    export       ONNX export into a bundle

:mod:`braintumor.inference` reads bundles through ``load``; no module it imports reaches
``training`` (only ``create`` does, and only analysis-free callers import it).
"""
