"""Evaluating a trained run, and predicting on a new input in that input's own file format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._files import atomic_write, check_output

_FITS = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")


def load_run(run):
    """The :class:`~meshgdl.train.trainer.Trainer` of a run folder, with the weights of its last
    checkpoint (one process, on the run's configured device)."""
    from .checkpoint import load_checkpoint
    from .config import complete_config
    from .trainer import Trainer

    state = load_checkpoint(run)
    trainer = Trainer(complete_config(state["config"]))
    trainer.model.load_state_dict(state["model"])
    trainer.step_count = state["step"]
    return trainer


def evaluate_run(run, split: str = "val") -> dict:
    """Loss and metrics of the run's model on its ``"val"`` graphs (all graphs if it held none out),
    its ``"train"`` graphs, or ``"all"``."""
    trainer = load_run(run)
    indices = {"train": trainer.train_idx, "val": trainer.val_idx or trainer.train_idx + trainer.val_idx,
               "all": sorted(trainer.train_idx + trainer.val_idx)}[split]
    return {"step": float(trainer.step_count), "graphs": float(len(indices))} | trainer.evaluate(indices)


@torch.no_grad()
def predict_file(run, input_path, output, overwrite: bool = False) -> Path:
    """Predict on ``input_path`` and write ``output`` in the input's format.

    HEALPix data: a FITS map (RING) of the predicted values, or of the predicted class as a float
    (``UNSEEN`` where the input is). Meshes: a PLY whose vertices carry ``label`` (classes) or
    ``value0..`` (values), or, for an output named ``.gii``, a label (or shape) GIFTI. The output is checked before any work and never replaced without
    ``overwrite``.
    """
    output = check_output(output, overwrite)
    input_path = str(input_path)
    trainer = load_run(run)
    info = trainer.info
    if info.domain == "healpix":
        if not input_path.lower().endswith(_FITS) or not str(output).lower().endswith(_FITS):
            raise ValueError(f"this run predicts HEALPix maps: give a FITS input and a FITS output (got {input_path}, {output})")
        from .data import healpix_sample

        graph = healpix_sample(input_path, trainer.dtype)
    elif info.domain == "mesh":
        if not str(output).lower().endswith((".ply", ".gii")):
            raise ValueError("this run predicts per-vertex values of meshes: give the output a .ply name, or .label.gii "
                             f"for a label GIFTI (got {output})")
        from .data import mesh_sample

        if not info.options:
            raise ValueError("predict reads a mesh with the CSV feature columns of a mesh_folder run; this run's "
                             f"data set ({trainer.config['data']['name']}) reads no new meshes (use `meshgdl evaluate`)")
        graph = mesh_sample(input_path, trainer.dtype, **info.options)
    else:
        raise ValueError(f"predict writes HEALPix maps and meshes; this run trained on a {info.domain} data set "
                         "(use `meshgdl evaluate`)")
    from torch_geometric.data import Batch

    trainer.model.eval()
    out = trainer.model(Batch.from_data_list([graph]).to(trainer.dist.device)).cpu()
    pred = out.argmax(-1) if info.labels else out
    if info.domain == "healpix":
        from ..geometry import write_healpix_map

        x = pred.to(torch.float64) if info.labels else pred.reshape(graph.num_nodes, -1)
        return write_healpix_map(graph, output, x=x, overwrite=overwrite)
    from ..geometry import read_mesh

    if str(output).lower().endswith(".gii"):
        return write_label_gifti(output, pred.numpy(), labels=info.labels, overwrite=overwrite)
    vertices, faces = read_mesh(input_path)
    return write_ply(output, vertices, faces, pred.numpy(), labels=info.labels, overwrite=overwrite)


def write_label_gifti(path, values, labels: bool, overwrite: bool = False) -> Path:
    """Per-vertex classes as a label GIFTI (``NIFTI_INTENT_LABEL``, int32), or values as a shape
    GIFTI (``NIFTI_INTENT_SHAPE``, float32, one data array per channel), as FreeSurfer and Connectome
    Workbench read them beside the surface."""
    try:
        import nibabel as nib
    except ImportError:
        raise ImportError("writing GIFTI needs nibabel: pip install 'meshgdl[gifti]'") from None
    values = np.asarray(values)
    if labels:
        arrays = [nib.gifti.GiftiDataArray(values.astype(np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")]
    else:
        arrays = [nib.gifti.GiftiDataArray(v.astype(np.float32), intent="NIFTI_INTENT_SHAPE", datatype="NIFTI_TYPE_FLOAT32")
                  for v in values.reshape(len(values), -1).T]
    image = nib.gifti.GiftiImage(darrays=arrays)
    if labels:
        for k in np.unique(values):
            image.labeltable.labels.append(nib.gifti.GiftiLabel(key=int(k)))
            image.labeltable.labels[-1].label = f"class {int(k)}"
    with atomic_write(path, overwrite) as tmp:
        nib.save(image, str(tmp))
    return Path(path)


def write_ply(path, vertices, faces, values, labels: bool, overwrite: bool = False) -> Path:
    """An ASCII PLY with per-vertex ``label`` (int) or ``value0..valueC-1`` (float) properties."""
    values = np.asarray(values).reshape(len(vertices), -1)
    names = ["label"] if labels else [f"value{c}" for c in range(values.shape[1])]
    kind = "int" if labels else "double"
    header = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}",
              "property double x", "property double y", "property double z"]
    header += [f"property {kind} {n}" for n in names]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    fmt = "%d" if labels else "%.17g"
    rows = [" ".join(f"{c:.17g}" for c in v) + " " + " ".join(fmt % a for a in val) for v, val in zip(vertices, values)]
    rows += ["3 " + " ".join(str(int(i)) for i in f) for f in faces]
    with atomic_write(path, overwrite) as tmp:
        Path(tmp).write_text("\n".join(header + rows) + "\n")
    return Path(path)
