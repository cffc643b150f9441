"""The `cdr` program: the pipeline's commands beside the sandbox's, and the demo that runs both.

The one place that may import both `pipelines` and `sandbox`; the pipeline never imports the sandbox.
"""
