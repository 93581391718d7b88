"""The OpenAPI description of one deployment: what its decision requests must hold.

The request models are the same for every deployment, but what a decision request needs
depends on the policy and model served: a score vector of exactly ``n_classes`` numbers,
an ``ood_score`` when the policy was fitted with out-of-scope scores, and ``input`` only
when a model is configured. :func:`describe_deployment` writes those constraints into the
published description, so a client (or a fuzzer) generating requests from it sends what
this service accepts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_deployment"]


def describe_deployment(
    schema: dict[str, Any], *, n_classes: int | None, uses_ood: bool, has_model: bool
) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with the decision request of this deployment."""
    request = schema.get("components", {}).get("schemas", {}).get("DecisionRequest")
    if request is None or n_classes is None:
        return schema
    properties = request["properties"]
    scores = {
        "type": "array",
        "items": {"type": "number"},
        "minItems": n_classes,
        "maxItems": n_classes,
        "description": f"The model's {n_classes} scores (probabilities or logits), one per class.",
    }
    required = ["ood_score"] if uses_ood else []
    if uses_ood:
        properties["ood_score"] = {
            "type": "number",
            "description": "The input's out-of-scope score (the policy was fitted with one).",
        }
    if has_model:
        properties["scores"] = scores
        request["oneOf"] = [
            {"required": ["scores"], "not": {"required": ["input"]}},
            {"required": ["input"], "not": {"required": ["scores"]}},
        ]
    else:
        properties["scores"] = scores
        properties.pop("input", None)
        required.append("scores")
    if required:
        request["required"] = sorted(set(request.get("required", [])) | set(required))
    return schema
