"""Ours vs torchvision's RetinaNet, stage by stage, same weights and inputs, measured in one run.

Stages: forward (backbone + FPN + heads on a preprocessed batch), target assignment + loss (anchors,
matching, focal and box loss), postprocess (decode, top-k, NMS, boxes back to image pixels) and a
whole training step (preprocess, forward, loss, backward, SGD step). Two configurations: torchvision's
R50-FPN v1 on 512x512 images, batch 2; the classroom preset on 128x128 images, batch 16.

Each stage alternates the two implementations and reports the median of the repeats; a ratio below
1.0 means ours is faster.

    uv run python benchmarks/bench_model.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision.models.detection import retinanet_resnet50_fpn
from torchvision.ops.misc import FrozenBatchNorm2d

from retina_lessons import RetinaNet, get_config
from retina_lessons.torchvision_compat import to_torchvision
from retina_lessons.transform import postprocess_boxes


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Replace BatchNorm2d by torchvision's FrozenBatchNorm2d, as torchvision does with pretrained weights."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)


def detector_heads(cls_predictor: torch.nn.Conv2d) -> None:
    """Heads that keep hundreds of boxes above the score threshold, like a detector in training."""
    with torch.no_grad():
        cls_predictor.bias.fill_(-2.0)
        cls_predictor.weight.normal_(0, 0.01)


def make_targets(num_images: int, size: int, generator: torch.Generator) -> list[dict]:
    targets = []
    for _ in range(num_images):
        num = int(torch.randint(1, 8, (1,), generator=generator))
        xy = torch.rand(num, 2, generator=generator) * size * 0.7
        wh = size * 0.05 + torch.rand(num, 2, generator=generator) * size * 0.3
        targets.append({"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(0, 3, (num,), generator=generator)})
    return targets


def stages(ours: RetinaNet, tv, images: list[torch.Tensor], targets: list[dict]):
    """For each stage, a pair of zero-argument callables (ours, torchvision's)."""
    batch, image_sizes, _ = ours.preprocess(images)
    original_sizes = [tuple(i.shape[-2:]) for i in images]
    image_list, tv_targets = tv.transform(images, [dict(t) for t in targets])
    _, _, our_targets = ours.preprocess(images, targets)
    with torch.no_grad():
        tv_features = list(tv.backbone(image_list.tensors).values())
        tv_head = tv.head(tv_features)
        cls_logits, box_deltas = ours(batch)

    def ours_forward():
        with torch.no_grad():
            ours(batch)

    def tv_forward():
        with torch.no_grad():
            tv.head(list(tv.backbone(image_list.tensors).values()))

    def ours_loss():
        with torch.no_grad():
            anchors = ours.anchors(batch.shape[-2:])
            ours.compute_loss(cls_logits, box_deltas, anchors, our_targets)

    def tv_loss():
        with torch.no_grad():
            anchors = tv.anchor_generator(image_list, tv_features)
            tv.compute_loss(tv_targets, tv_head, anchors)

    def ours_postprocess():
        detections = ours.postprocess(cls_logits, box_deltas, batch.shape[-2:], image_sizes)
        postprocess_boxes(detections, image_sizes, original_sizes)

    def tv_postprocess():
        anchors = tv.anchor_generator(image_list, tv_features)
        per_level = [x.size(2) * x.size(3) * ours.config.num_anchors for x in tv_features]
        split = {k: list(v.split(per_level, dim=1)) for k, v in tv_head.items()}
        split_anchors = [list(a.split(per_level)) for a in anchors]
        detections = tv.postprocess_detections(split, split_anchors, image_list.image_sizes)
        tv.transform.postprocess(detections, image_list.image_sizes, original_sizes)

    our_opt = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)
    tv_opt = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)

    def ours_step():
        our_opt.zero_grad()
        sum(ours.loss(images, targets).values()).backward()
        our_opt.step()

    def tv_step():
        tv_opt.zero_grad()
        tv.train()
        losses = tv(images, targets)
        tv.eval()
        sum(losses.values()).backward()
        tv_opt.step()

    return {"forward": (ours_forward, tv_forward), "assign + loss": (ours_loss, tv_loss),
            "postprocess": (ours_postprocess, tv_postprocess), "training step": (ours_step, tv_step)}


def measure(fn_ours, fn_tv, repeats: int) -> tuple[float, float]:
    fn_ours(), fn_tv()  # warm-up
    ours, tv = [], []
    for _ in range(repeats):
        for fn, times in ((fn_ours, ours), (fn_tv, tv)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(tv)


def setups(generator: torch.Generator):
    torch.manual_seed(0)
    tv = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, min_size=512, max_size=512)
    freeze_batchnorm(tv.backbone.body)
    detector_heads(tv.head.classification_head.cls_logits)
    ours = RetinaNet.from_torchvision(tv.eval()).eval()
    images = [torch.rand(3, 512, 512, generator=generator) for _ in range(2)]
    yield "R50-FPN v1, 512 px, batch 2", ours, tv.eval(), images, make_targets(2, 512, generator)

    ours = RetinaNet(get_config("classroom")).eval()
    detector_heads(ours.cls_head.predictor)
    tv = to_torchvision(ours).eval()
    images = [torch.rand(3, 128, 128, generator=generator) for _ in range(16)]
    yield "classroom, 128 px, batch 16", ours, tv, images, make_targets(16, 128, generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages", nargs="*", default=None, help="only these stages (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} alternating runs")
    print(f"{'configuration':30s} {'stage':15s} {'ours ms':>10s} {'torchvision ms':>15s} {'ratio':>7s}")
    generator = torch.Generator().manual_seed(0)
    for name, ours, tv, images, targets in setups(generator):
        for stage, (fn_ours, fn_tv) in stages(ours, tv, images, targets).items():
            if args.stages and stage not in args.stages:
                continue
            t_ours, t_tv = measure(fn_ours, fn_tv, args.repeats)
            print(f"{name:30s} {stage:15s} {t_ours * 1e3:10.1f} {t_tv * 1e3:15.1f} {t_ours / t_tv:7.2f}", flush=True)


if __name__ == "__main__":
    main()
