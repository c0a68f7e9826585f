"""Datasets: image decoding and resizing, the builtin:shapes generator, the multi-resolution
LMDB writer (`prepare_dataset`), its reader (`MultiResolutionDataset`) and inspection tools.

Modules, one concern each (import them directly; this package imports nothing heavy so that
worker processes start fast):

- `images`: decode any image file to RGB uint8, square crop, the box / lanczos pyramid, encode.
- `shapes`: the procedural `builtin:shapes` dataset (`render_shapes`, `SHAPE_CLASSES`, `VARIANTS`).
- `sources`: what a SOURCE string names (folder, zip, builtin) and the list of its files.
- `layout`: the LMDB key layout and the metadata record shared by writer and readers.
- `prepare`: `prepare_dataset`, the parallel writer.
- `lmdb_dataset`: `MultiResolutionDataset`, the torch Dataset that training uses.
- `inspect`: `dataset_info`, `preview_grid`, `verify_dataset`.
"""
