"""Class weights: per-class weights in the classification loss, on YOLO26, YOLO11 and RT-DETR."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

from pydantic import Field, field_validator

from trainers.customizations.table import Customization, RecipeView, Settings
from trainers.datasets.class_weights import NORMALIZATIONS, SCHEME_LABELS, SCHEMES, ZERO_COUNT, compute_weights
from trainers.errors import Problem, RecipeError


class ClassWeights(Settings):
    weights: list[float] | None = Field(
        None, title="Explicit weights (one per class id; empty: from the scheme)",
        description="explicit weight per class id, one per class; null = derive them from the scheme",
    )  # fmt: skip
    scheme: Literal[SCHEMES] = Field(
        "inverse_frequency", description="how train label counts become weights (trainers/datasets/class_weights.py)",
        json_schema_extra={"labels": SCHEME_LABELS},
    )  # fmt: skip
    power: float = Field(
        0.5, ge=0, description="exponent of 'power': (1/n)^power like ultralytics cls_pw; 0 = all ones",
        json_schema_extra={"when": ("scheme", "power")},
    )  # fmt: skip
    beta: float = Field(
        0.999, gt=0, lt=1, description="beta of 'effective_number' (Cui et al. 2019); near 1 = inverse frequency",
        json_schema_extra={"when": ("scheme", "effective_number")},
    )  # fmt: skip
    cap: float | None = Field(
        None, gt=0, description="upper bound on any class's final weight; null = no cap",
        json_schema_extra={"none_label": "no cap", "widget_default": 10.0},
    )  # fmt: skip
    normalize: Literal[NORMALIZATIONS] = Field(
        "mean", title="Normalise", description="mean: weights average 1 (loss scale kept); min: the smallest is 1"
    )
    zero_count: Literal[ZERO_COUNT] = Field(
        "one", title="Classes with no labels",
        description="a class with no labels gets: one = 1.0 (neutral: it has no positives to weight up), max = the "
        "largest weight (the doctor flags it: it only pushes the class's scores down), error = refuse",
    )  # fmt: skip

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("must list one weight per class, got an empty list")
            bad = [w for w in v if not (w >= 0 and w < float("inf"))]
            if bad:
                raise ValueError(f"weights must be finite and >= 0, got {bad[0]}")
            if not any(w > 0 for w in v):
                raise ValueError("at least one weight must be > 0 (all zeros would switch the classification loss off)")
        return v

    def from_counts(self, counts: Sequence[int]) -> list[float]:
        """The weights this scheme gives classes with these train label counts (``weights`` when explicit).

        Raises:
            WorkbenchError: ``zero_count: error`` with a class that has no labels.
        """
        if self.weights is not None:
            return list(self.weights)
        return compute_weights(counts, self.scheme, **self.scheme_params())

    def check_classes(self, names: Sequence[str], where: str = "the dataset") -> Problem | None:
        """An explicit list must give one weight per class of the dataset (``where`` names it in the message)."""
        if self.weights is None or len(self.weights) == len(names):
            return None
        return Problem(
            "customizations.class_weights.weights",
            f"customizations.class_weights.weights has {len(self.weights)} values but {where} has {len(names)} "
            f"classes ({', '.join(map(str, names))})",
            "give one weight per class",
        )

    def scheme_params(self) -> dict:
        """The keyword arguments of :func:`trainers.datasets.class_weights.compute_weights` besides the scheme."""
        return {k: getattr(self, k) for k in ("power", "beta", "cap", "normalize", "zero_count")}


def check(settings: ClassWeights, recipe: RecipeView) -> Iterator[Problem]:
    if float(recipe.train.get("cls_pw") or 0) > 0:
        yield Problem(
            "customizations.class_weights",
            "customizations.class_weights: train.cls_pw would weight the classes a second time",
            "remove train.cls_pw or the class_weights block",
        )


class ClassWeightsMixin:
    """Sets per-class weights on the model after the train dataloader exists (ultralytics' ``set_class_weights``).

    YOLO26 (end-to-end loss) and YOLO11 (``v8DetectionLoss``) multiply the per-class BCE by ``model.class_weights``
    in ultralytics 8.4, so setting that tensor is the whole job and nothing is weighted twice (the recipe rejects
    ``train.cls_pw`` together with this block). RT-DETR gets weighted focal/varifocal terms instead. The tensor is
    a plain attribute of the stock model class, so it is saved in checkpoints and copied to the EMA.
    """

    class_weights_used: list[float] | None = None  # the weights set, one per class id (run_start's class_weights)

    def set_class_weights(self):
        super().set_class_weights()
        import torch
        from ultralytics.nn.tasks import RTDETRDetectionModel
        from ultralytics.utils import LOGGER
        from ultralytics.utils.torch_utils import unwrap_model

        settings = self.recipe.customizations.class_weights
        problem = settings.check_classes(list(self.data["names"].values()))
        if problem:
            raise RecipeError(problem)
        weights = settings.from_counts([int(c) for c in self.get_class_counts()] if settings.weights is None else [])
        model = unwrap_model(self.model)
        tensor = torch.tensor(weights, dtype=torch.float32, device=self.device)
        model.class_weights = tensor
        if isinstance(model, RTDETRDetectionModel):
            from trainers.customizations.weighted_losses import install_rtdetr_weights

            install_rtdetr_weights(model, tensor)
        self.class_weights_used = weights
        LOGGER.info(
            f"class_weights: {dict(zip(self.data['names'].values(), [round(w, 3) for w in weights], strict=True))}"
        )

    def run_state(self) -> dict:
        return {**super().run_state(), "class_weights": self.class_weights_used}


ROW = Customization(
    key="class_weights",
    rank=30,
    why="sets the weights once the train loader exists (counts come from it) and before the EMA copies the model",
    title="Class weights",
    help="Weight each class in the classification loss, so rare classes count more.",
    settings=ClassWeights,
    mixin=ClassWeightsMixin,
    check=check,
)
