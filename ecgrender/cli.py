"""`ecgrender`: fetch a WFDB database, build a rendered dataset from it, and check or look at one."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from shards.errors import one_line_errors
from shards.layout import SPLITS

from . import __version__
from .errors import EcgError
from .noise.models import noise_help
from .render import renderer_help, renderer_names
from .sources import database_help, database_names


def _csv_list(_ctx, _param, value):
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one comma-separated name")
    return items


def _folds(_ctx, _param, value):
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated fold numbers 1-10, e.g. 9 or 8,9") from None


def _spacing(_ctx, _param, value):
    if value is None:
        return None
    spacing = {}
    for item in value.split(","):
        name, _, stride = item.partition("=")
        try:
            spacing[name.strip()] = int(stride)
        except ValueError:
            raise click.BadParameter(f"{item!r}: use CLASS=SAMPLES, e.g. N=1000,T=100") from None
        if spacing[name.strip()] <= 0:
            raise click.BadParameter(f"{item!r}: the spacing must be a positive number of samples")
    return spacing


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecgrender")
def main():
    """Render WFDB ECG databases into shared image datasets, the ImECGnet paper's way.

    \b
    Typical use:
      ecgrender fetch mitdb --dest data/mitdb
      ecgrender build --db mitdb --source data/mitdb --out datasets/mitdb
      ecgrender verify datasets/mitdb
      ecgrender preview datasets/mitdb -o grid.png
    """


@main.command()
@click.argument("db", type=click.Choice(database_names(fetchable=True)))
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to download the database into (created).")
@click.option("--records", callback=_csv_list, help="Comma-separated subset of records (default: all).")
@click.option("--mirror", metavar="URL",
              help="Base URL of a PhysioNet mirror laid out like https://physionet.org/files/ (default).")
@click.option("--fs", type=int, metavar="HZ",
              help="Sampling rate to download, for ptbxl only: 100 (records100/, the default) or 500 "
                   "(records500/); its tables are fetched either way.")
@one_line_errors
def fetch(db, dest, records, mirror, fs):
    """Download PhysioNet database DB (the release the toolkit reads) with wfdb; a rerun resumes."""
    from .fetch import fetch_database

    path = fetch_database(db, dest, records=records, base_url=mirror, fs=fs)
    click.echo(f"{db} is in {path}")


@main.command()
@click.option("--db", required=True, type=click.Choice(database_names()),
              help=f"Database kind (its file layout, leads and label rules): {database_help()}.")
@click.option("--source", type=click.Path(path_type=Path),
              help="WFDB database directory (as from `ecgrender fetch`). Not needed for --db demo.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Dataset directory to write (new or empty; an unfinished build there is resumed).")
@click.option("--records", callback=_csv_list, help="Comma-separated subset of records, e.g. 100,202 (default: all).")
@click.option("--labels", type=click.Path(path_type=Path),
              help="CSV of record,label rows completing or overriding record labels (e.g. a physician's).")
@click.option("--classes", callback=_csv_list,
              help="Comma-separated classes to keep, in label-id order (default: the database's classes).")
@click.option("--window", default=1000, show_default=True, type=click.IntRange(min=16),
              help="Window length in samples, taken at the same offset in every lead.")
@click.option("--per-class", type=click.IntRange(min=1), help="At most this many windows per class.")
@click.option("--spacing", callback=_spacing,
              help="Mean distance between window starts per class, e.g. N=1000,T=100 (denser for rare classes).")
@click.option("--max-overlap", default=0.5, show_default=True, type=click.FloatRange(0, 0.99),
              help="Largest overlap of two windows of one record, as a fraction of the window.")
@click.option("--split-by", default="patient", show_default=True,
              type=click.Choice(["patient", "record", "window", "time", "fold"]),
              help="patient/record: each patient (record) in one split. window: windows at random, overlapping "
              "ones kept together. time: per record and class the earliest windows train, then val, then test, "
              "one window apart (the Ref-ECG code's protocol). fold: the database's own patient-wise folds "
              "(PTB-XL: 1-8 train, 9 val, 10 test). No mode lets two splits share a sample.")
@click.option("--folds-val", callback=_folds, metavar="N[,N...]", help="--split-by fold: validation folds (default 9).")
@click.option("--folds-test", callback=_folds, metavar="N[,N...]", help="--split-by fold: test folds (default 10).")
@click.option("--fs", type=int, help="ptbxl: the stored rate to read, 100 (records100/, default) or 500 (records500/).")
@click.option("--task", help="ptbxl: label task, superdiagnostic (default: NORM, MI, STTC, CD, HYP), subdiagnostic, "
              "diagnostic, form, rhythm or all (multi-label; docs/databases.md).")
@click.option("--resample", type=click.FloatRange(min=1, min_open=False), metavar="HZ",
              help="Resample every record to HZ before drawing windows (polyphase FIR with a Kaiser-window "
              "anti-aliasing filter; --window is then in samples at HZ).")
@click.option("--split-file", metavar="CSV|NAME",
              help="Put each record in the split a record,split CSV names (e.g. the shipped 'mitdb-ds1-ds2': "
              "MIT-BIH DS1 train, DS2 test); without val rows, val is drawn from the train patients.")
@click.option("--allow-missing-classes", is_flag=True,
              help="Build even when a split is empty or lacks a class the others have (refused by default).")
@click.option("--test-fraction", default=0.2, show_default=True, type=click.FloatRange(0, 0.9, min_open=True),
              help="Share of windows for the test split (whole patients/records in those modes).")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 0.9, min_open=True),
              help="Share of windows for the validation split.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of window offsets, splits and order.")
@click.option("--renderer", default="fast", show_default=True, type=click.Choice(renderer_names()),
              help=f"How windows become images: {renderer_help()}.")
@click.option("--shard-size", type=click.IntRange(min=1),
              help="Samples per shard (default: about 64 shards per split, 32 to 1,000 samples each).")
@click.option("--manifest", type=click.Path(path_type=Path),
              help="Rebuild exactly the windows of this manifest.csv (reproduce a shared dataset): its rows "
              "fix windows, labels and splits, so the window and split options do not apply.")
@click.option("--noise", metavar="SPEC",
              help="With --manifest: add noise to every window before rendering and before the lead sum, each TYPE "
              "at a target SNR in dB per window and lead (nst's definition), e.g. bw:6,ma:12 or gauss:inf. "
              f"Types: {noise_help()}. Seeded by --seed; docs/noise.md.")
@click.option("--noise-splits", callback=_csv_list, metavar="SPLIT[,SPLIT]",
              help="--noise: the manifest's splits to copy (default: test).")
@click.option("--noise-source", type=click.Path(path_type=Path), metavar="DIR",
              help="--noise: take bw, ma and em from the real records of the MIT-BIH Noise Stress Test Database "
              "in DIR (PhysioNet nstdb) instead of synthetic models.")
@click.option("--description", help="A sentence or two about the dataset for its card (what it is for, by whom).")
@click.option("--creator", "creators", multiple=True, metavar="NAME",
              help="Who made the dataset, for its card (repeat for several).")
@click.option("--jobs", default=-1, show_default=True, type=int, help="Parallel render jobs (-1: all cores).")
@click.option("--backend", default="loky", show_default=True,
              help="joblib backend for rendering: loky (this machine), dask or ray (a cluster; see docs/build.md).")
@click.option("--scheduler", metavar="ADDRESS",
              help="dask scheduler address (tcp://host:8786) for --backend dask; default: a local cluster.")
@click.option("--force", is_flag=True, help="Delete an existing dataset in --out and build from scratch.")
@one_line_errors
def build(backend, scheduler, **options):
    """Build a dataset: windows -> manifest.csv -> refecg.h5 -> image shards -> dataset.json."""
    from .build import BuildConfig, build_dataset

    cfg = BuildConfig(**(options | {"creators": list(options["creators"]) or None}))
    with _render_backend(backend, scheduler):
        build_dataset(cfg, echo=click.echo)


@contextlib.contextmanager
def _render_backend(backend: str, scheduler: str | None):
    """joblib backend for the render stage; for dask, a client on `scheduler` or a local cluster."""
    import joblib

    if backend != "dask":
        if scheduler:
            raise EcgError("--scheduler goes with --backend dask")
        if backend == "ray":
            try:
                from ray.util.joblib import register_ray
            except ImportError:
                raise EcgError("--backend ray needs ray: pip install ray, then start it (see docs/build.md)") from None
            register_ray()
        if backend not in joblib.parallel.BACKENDS:
            raise EcgError(f"unknown --backend {backend!r}: use loky, threading, multiprocessing, dask or ray")
        with joblib.parallel_config(backend=backend):
            yield
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise EcgError("--backend dask needs dask.distributed: pip install 'dask[distributed]'") from None
    with Client(scheduler) if scheduler else Client(processes=True) as client:
        with joblib.parallel_config(backend="dask", client=client):
            yield


@main.command()
@click.argument("dataset", metavar="DATASET")
@one_line_errors
def verify(dataset):
    """Recompute every checksum and cross-check shards, manifest and refecg.h5.

    DATASET is a directory or the URL of one (http(s)://, or s3://, memory://, ... with their fsspec back ends):
    its shards are streamed, the small files fetched once into the cache (docs/format.md, Remote datasets).
    """
    from shards.remote import open_dataset
    from shards.verify import verify_dataset

    problems = verify_dataset(open_dataset(dataset, fresh=True), progress=True)  # a URL's small files read again
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{dataset}: OK")


@main.command()
@click.argument("dataset", metavar="DATASET")
@one_line_errors
def info(dataset):
    """Summarise a dataset's card (DATASET: a directory or its URL): source, licence, classes, counts per split,
    render settings."""
    from shards.card import read_card, summarize_card
    from shards.remote import open_dataset

    click.echo(summarize_card(read_card(open_dataset(dataset))))


@main.command()
@click.argument("dataset", metavar="DATASET")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write.")
@click.option("--per-class", default=4, show_default=True, type=click.IntRange(min=1), help="Samples per class.")
@click.option("--split", type=click.Choice(SPLITS), help="Split to draw from (default: all).")
@click.option("--seed", default=0, show_default=True, type=int)
@one_line_errors
def preview(dataset, output, per_class, split, seed):
    """Draw a labelled grid of samples per class (like the paper's Fig. 2); DATASET: a directory or its URL."""
    from shards.remote import open_dataset

    from .preview import write_preview

    write_preview(open_dataset(dataset), output, per_class=per_class, split=split, seed=seed)
    click.echo(f"preview grid: {output}")


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dest", metavar="DEST")
@one_line_errors
def publish(dataset, dest):
    """Upload DATASET (checked with verify first) to DEST, an fsspec URL (file://, s3://, gs://, ... with its
    back end installed): every file, the card last, so a half-uploaded dataset is never seen as complete."""
    from shards.publish import publish_dataset

    url = publish_dataset(dataset, dest, progress=True)
    click.echo(f"published {dataset} to {url}: check it with `ecgrender verify {url}`")


@main.command()
@click.argument("dataset", metavar="DATASET")
@click.option("--format", "fmt", required=True, type=click.Choice(["croissant", "hf"]),
              help="croissant: a Croissant 1.0 JSON-LD file; hf: a Hugging Face dataset card (README.md).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write, outside the dataset directory (default: standard output).")
@one_line_errors
def card(dataset, fmt, output):
    """Describe a dataset (a directory or its URL) in a standard form (Croissant JSON-LD or a Hugging Face card),
    from its card."""
    from shards.metadata import render_metadata, write_metadata
    from shards.remote import open_dataset

    dataset = open_dataset(dataset)
    if output is None:
        click.echo(render_metadata(dataset, fmt), nl=False)
    else:
        click.echo(f"{fmt} description: {write_metadata(dataset, fmt, output)}")


if __name__ == "__main__":
    main()
