"""Describe a dataset in standard forms: a Croissant 1.0 JSON-LD file and a Hugging Face dataset card.

Both are derived from the dataset's card (dataset.json, read and checked with `read_card`) and never
written into the dataset directory: the card checksums the dataset's files, and these descriptions
are for the published copy (put them next to dataset.json there: their paths are relative to it).
"""

from __future__ import annotations

import json
from pathlib import Path

from .card import file_digest, is_multi_label, read_card
from .errors import DatasetError
from .layout import CARD, IMAGES, MANIFEST, REFECG, SPLITS, shard_split, write_atomic
from .manifest import COLUMNS, MULTI_LABEL_ID, SEPARATOR, TARGETS

FORMATS = ("croissant", "hf")
CROISSANT_1_0 = "http://mlcommons.org/croissant/1.0"
# The JSON-LD @context of Croissant 1.0 (as in the specification's examples and mlcroissant's), plus
# wd: for the Wikidata type of the split field.
CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataBiases": "cr:dataBiases",
    "dataCollection": "cr:dataCollection",
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isEnumeration": "cr:isEnumeration",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "personalSensitiveInformation": "cr:personalSensitiveInformation",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "wd": "https://www.wikidata.org/wiki/",
}
# MLCommons' definitions of the three splits (what Croissant tools recognise), by split name.
SPLIT_URLS = {
    "train": "https://mlcommons.org/definitions/training_split",
    "val": "https://mlcommons.org/definitions/validation_split",
    "test": "https://mlcommons.org/definitions/test_split",
}
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}  # Hugging Face's conventional names
# SPDX ids whose Hugging Face id is not simply the lower-cased SPDX id.
_HF_LICENSE_IDS = {"ODC-By-1.0": "odc-by", "ODbL-1.0": "odbl", "PDDL-1.0": "pddl"}
_HF_LICENSES = {  # Hugging Face licence ids that are lower-cased SPDX ids (the ones ECG data use, and common ones)
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0",
    "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
    "cc-by-nd-4.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-4.0", "gpl-2.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0",
    "mpl-2.0", "unlicense",
}
_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
_COLUMN_DOCS = {
    "key": "Unique sample key: record ('/' and '.' replaced by '-'), '_', start sample in 9 digits; the shards' "
           "member names are KEY.png, KEY.json and KEY.cls (multi-label: KEY.hot).",
    "database": "Source database of the window.",
    "record": "WFDB record name inside the database.",
    "patient": "Patient id (a patient-wise split never puts one patient in two splits).",
    "start": "First sample of the window (0-based, same offset in every lead).",
    "length": "Window length in samples.",
    "fs": "Sampling frequency in Hz.",
    "split": "Split of the window: train, val or test.",
    TARGETS: "Multi-hot classes: one '0'/'1' character per class, in the order of the classes record set.",
}
_TYPES = {"start": "sc:Integer", "length": "sc:Integer", "label_id": "sc:Integer", "fs": "sc:Float"}


def spdx_url(licence: str) -> str:
    """The SPDX page of an SPDX licence id (https://spdx.org/licenses/CC-BY-4.0.html); other text as it is."""
    if licence and all(c.isalnum() or c in "-.+" for c in licence):
        return f"https://spdx.org/licenses/{licence}.html"
    return licence


def hf_license(licence: str) -> str:
    """Hugging Face's licence id for an SPDX id (ODC-By-1.0 -> odc-by, CC-BY-4.0 -> cc-by-4.0); 'other' for a
    licence it has no id for, 'unknown' when the card records none."""
    if not licence:
        return "unknown"
    if licence in _HF_LICENSE_IDS:
        return _HF_LICENSE_IDS[licence]
    return licence.lower() if licence.lower() in _HF_LICENSES else "other"


def size_category(n: int) -> str:
    """Hugging Face's size category of a dataset of n samples (n<1K, 1K<n<10K, ...)."""
    for limit, name in _SIZE_CATEGORIES:
        if n < limit:
            return name
    return "n>1B"


def _total(card: dict) -> int:
    """All windows: the card's `total`, else the samples of its shards."""
    total = card.get("total")
    if isinstance(total, int) and not isinstance(total, bool):
        return total
    return sum(entry["samples"] for rel, entry in card["files"].items() if shard_split(rel))


def _split_windows(card: dict) -> dict[str, int]:
    """Windows per split, from the shards the card lists (each entry has its number of samples)."""
    return {s: sum(e["samples"] for rel, e in card["files"].items() if shard_split(rel) == s) for s in SPLITS}


def _shards(card: dict, split: str | None = None) -> list[str]:
    return sorted(rel for rel in card["files"] if shard_split(rel) and (split is None or shard_split(rel) == split))


def dataset_name(root: str | Path) -> str:
    """The dataset's name: its directory's name (for a dataset opened from a URL, the URL's last part)."""
    from .remote import remote_base

    base = remote_base(root)
    return base.rstrip("/").rsplit("/", 1)[-1] if base else Path(root).resolve().name


def pretty_name(card: dict) -> str:
    source = card["source"]
    kind = "multi-label" if is_multi_label(card) else "single-label"
    return f"{source['database']} ({source['version']}) rendered ECG images, {kind}, split by {card['split_by']}"


def summary(card: dict) -> str:
    """One paragraph on what the dataset is, from its card."""
    source, window = card["source"], card["window"]
    fs = f" at {window['fs']:g} Hz" if "fs" in window else ""
    kind = ("multi-label (a window has one or more of the classes)" if is_multi_label(card)
            else "single-label (one class per window)")
    out = card["render"].get("out_h"), card["render"].get("out_w")
    size = f"{out[0]} x {out[1]} (h x w) " if all(out) else ""
    return (
        f"{_total(card)} ECG windows of {window['length']} samples{fs} from the {source['database']} database "
        f"({source['version']}), each rendered as an 8-bit grey {size}PNG image of its {card['n_leads']} leads "
        f"({', '.join(card['leads'])}) with the '{card['renderer']}' renderer, after the ImECGnet paper (Ghahremani "
        f"& Lofi 2023), in webdataset tar shards; with the Ref-ECG 1-D set (the sum of the leads of the same "
        f"windows) in HDF5 and a CSV manifest of the windows. Classes: {', '.join(card['classes'])}; {kind}. "
        f"Splits train/val/test by {card['split_by']}. Built by {card['software_version']} (dataset format "
        f"version {card['format_version']})."
    )


def _description(card: dict) -> str:
    own = card.get("description")
    return f"{own}\n\n{summary(card)}" if isinstance(own, str) and own.strip() else summary(card)


def _cite_as(source: dict) -> str | None:
    if source.get("citation"):
        return str(source["citation"])
    return f"https://doi.org/{source['doi']}" if source.get("doi") else None


def _file_object(rel: str, sha256: str, size: int, encoding: str, description: str) -> dict:
    return {
        "@type": "cr:FileObject",
        "@id": rel,
        "name": rel,
        "description": description,
        "contentUrl": rel,
        "contentSize": f"{size} B",
        "encodingFormat": encoding,
        "sha256": sha256,
    }


def _field(record_set: str, name: str, data_type, description: str, source: dict | None = None, **extra) -> dict:
    field = {"@type": "cr:Field", "@id": f"{record_set}/{name}", "name": name, "description": description,
             "dataType": data_type}
    if source is not None:
        field["source"] = source
    return {**field, **extra}


def _distribution(root: Path, card: dict) -> list[dict]:
    files = card["files"]
    for rel in (MANIFEST, REFECG):
        if rel not in files:
            raise DatasetError(f"{root / CARD} lists no {rel}: the dataset is incomplete; re-download or rebuild it")
    multi = is_multi_label(card)
    card_sha, card_size = file_digest(root / CARD)
    y = "int64 (N, C): the multi-hot targets" if multi else "int64 (N,): the label id"
    objects = [
        _file_object(CARD, card_sha, card_size, "application/json",
                     "The dataset card: source database (licence, citation), classes, counts per split, window, "
                     "leads, render settings, the command that rebuilds the dataset, and the sha256 and size of "
                     "every other file (see docs/format.md of imecgnet-toolkit)."),
        _file_object(MANIFEST, files[MANIFEST]["sha256"], files[MANIFEST]["bytes"], "text/csv",
                     "One row per window (the windows record set), ordered train, val, test: the contract every "
                     "other file follows, in the same order."),
        _file_object(REFECG, files[REFECG]["sha256"], files[REFECG]["bytes"], "application/x-hdf5",
                     "HDF5 (not a format Croissant reads; described here): the Ref-ECG 1-D set, one group per split "
                     "(train, val, test) holding /{split}/x float32 (N, window): the element-wise sum over all leads "
                     f"of each window in mV; /{{split}}/y {y}; /{{split}}/key variable-length UTF-8 (N,): the "
                     "manifest key. Rows are in manifest order; root attributes format_version and window."),
    ]
    members = "KEY.hot (the targets string)" if multi else "KEY.cls (the label id in ASCII)"
    for rel in _shards(card):
        entry = files[rel]
        objects.append(_file_object(
            rel, entry["sha256"], entry["bytes"], "application/x-tar",
            f"webdataset shard of the {shard_split(rel)} split: {entry['samples']} samples, each KEY.json (the "
            f"manifest row), KEY.png (the rendered window) and {members}, in manifest order.",
        ))
    objects.append({
        "@type": "cr:FileSet",
        "@id": "image-shards",
        "name": "image-shards",
        "description": f"The webdataset shards ({IMAGES}/{{split}}-NNNNNN.tar, each a FileObject above with its "
                       f"sha256): reading a split's shards in name order gives its manifest rows in order.",
        "encodingFormat": "application/x-tar",
        "includes": f"{IMAGES}/*.tar",
    })
    if _shards(card):
        objects.append({
            "@type": "cr:FileSet",
            "@id": "png-images",
            "name": "png-images",
            "description": "The rendered windows: the KEY.png members of the shards (8-bit grey PNG).",
            "containedIn": [{"@id": rel} for rel in _shards(card)],
            "encodingFormat": "image/png",
            "includes": "*.png",
        })
    return objects


def _record_sets(card: dict) -> list[dict]:
    multi = is_multi_label(card)
    classes = card["classes"]
    manifest = {"fileObject": {"@id": MANIFEST}}
    fields = []
    for column in COLUMNS + ((TARGETS,) if multi else ()):
        source = {**manifest, "extract": {"column": column}}
        extra: dict = {}
        data_type: str | list[str] = _TYPES.get(column, "sc:Text")
        if column == "label":
            doc = (f"The window's classes joined with '{SEPARATOR}' in class order." if multi
                   else "Class label (one of the classes record set).")
        elif column == "label_id":
            doc = (f"Always {MULTI_LABEL_ID} in a multi-label dataset: the classes are in targets." if multi
                   else "Index of the label in the classes record set.")
            if not multi:
                extra["references"] = {"field": {"@id": "classes/label_id"}}
        else:
            doc = _COLUMN_DOCS[column]
        if column == "split":
            data_type = ["sc:Text", "wd:Q3985153"]  # Wikidata: training, validation and test data sets
            extra["references"] = {"field": {"@id": "splits/name"}}
        fields.append(_field("windows", column, data_type, doc, source, **extra))
    sets: list[dict] = [
        {
            "@type": "cr:RecordSet",
            "@id": "splits",
            "name": "splits",
            "description": "The splits (train, val, test) and their MLCommons definitions.",
            "isEnumeration": True,
            "key": {"@id": "splits/name"},
            "field": [
                _field("splits", "name", "sc:Text", "Split name, as in the windows' split field."),
                _field("splits", "url", "sc:URL", "MLCommons definition of the split."),
            ],
            "data": [{"splits/name": s, "splits/url": SPLIT_URLS[s]} for s in SPLITS],
        },
        {
            "@type": "cr:RecordSet",
            "@id": "classes",
            "name": "classes",
            "description": "The classes, by label id" + (" (position in targets)." if multi else "."),
            "isEnumeration": True,
            "key": {"@id": "classes/label_id"},
            "field": [
                _field("classes", "label_id", "sc:Integer",
                       "Position of the class in targets." if multi else "Label id (the shards' KEY.cls)."),
                _field("classes", "label", "sc:Text", "Class label."),
            ],
            "data": [{"classes/label_id": i, "classes/label": c} for i, c in enumerate(classes)],
        },
        {
            "@type": "cr:RecordSet",
            "@id": "windows",
            "name": "windows",
            "description": "One record per window: the rows of manifest.csv. The window's image is the shard "
                           "member KEY.png and its Ref-ECG signal the row of /{split}/x in refecg.h5 with that key.",
            "key": {"@id": "windows/key"},
            "field": fields,
        },
    ]
    if _shards(card):
        images = {"fileSet": {"@id": "png-images"}}
        sets.append({
            "@type": "cr:RecordSet",
            "@id": "images",
            "name": "images",
            "description": "The rendered windows, by key (join with the windows record set for labels and split).",
            "key": {"@id": "images/key"},
            "field": [
                _field("images", "key", "sc:Text", "Sample key (the window's key in the windows record set).",
                       {**images, "extract": {"fileProperty": "filename"}, "transform": {"regex": r"^(.+)\.png$"}}),
                _field("images", "image", "sc:ImageObject",
                       "The window rendered as an 8-bit grey PNG: its leads one after the other along the width, "
                       "drawn as one line (the ImECGnet paper's picture).",
                       {**images, "extract": {"fileProperty": "content"}}),
            ],
        })
    return sets


def croissant(root: str | Path) -> dict:
    """The Croissant 1.0 JSON-LD description of the dataset at `root` (DatasetError if its card is unusable).

    Paths (contentUrl) are relative to the dataset directory: the file is meant to sit next to dataset.json
    in a published copy. No dataset version or publication date is given: the card records neither.
    """
    root = Path(root)
    card = read_card(root)
    source = card["source"]
    based_on = {"@type": "sc:Dataset", "name": source["database"], "version": source["version"]}
    if source.get("url"):
        based_on["url"] = source["url"]
    if source.get("doi"):
        based_on["identifier"] = f"https://doi.org/{source['doi']}"
    meta: dict = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CROISSANT_1_0,
        "name": dataset_name(root),
        "alternateName": pretty_name(card),
        "description": _description(card),
    }
    if source.get("licence"):
        meta["license"] = spdx_url(str(source["licence"]))
    if source.get("url") or source.get("doi"):
        meta["url"] = source.get("url") or f"https://doi.org/{source['doi']}"
    cite = _cite_as(source)
    if cite:
        meta["citeAs"] = cite
    creators = card.get("creators")
    if isinstance(creators, list) and creators:
        meta["creator"] = [{"@type": "sc:Person", "name": str(c)} for c in creators]
    meta["isBasedOn"] = based_on
    meta["keywords"] = ["ECG", "electrocardiogram", "image classification", "ImECGnet", source["database"],
                        card.get("label_type", "single-label")]
    meta["distribution"] = _distribution(root, card)
    meta["recordSet"] = _record_sets(card)
    return meta


def _yaml(value) -> str:
    """A YAML scalar: JSON's quoting (JSON strings are YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def hf_card(root: str | Path) -> str:
    """The Hugging Face dataset card (README.md: YAML header, then markdown) of the dataset at `root`."""
    root = Path(root)
    card = read_card(root)
    source, multi, classes = card["source"], is_multi_label(card), card["classes"]
    licence = str(source.get("licence", ""))
    hf_id = hf_license(licence)
    windows = _split_windows(card)
    splits = [s for s in SPLITS if _shards(card, s)]
    header = ["---", f"license: {hf_id}"]
    if hf_id == "other" and licence:
        link = spdx_url(licence) if spdx_url(licence) != licence else source.get("url")
        header += [f"license_name: {_yaml(licence)}", *([f"license_link: {_yaml(link)}"] if link else [])]
    header += [
        f"pretty_name: {_yaml(pretty_name(card))}",
        "task_categories:",
        "- image-classification",
        "task_ids:",
        f"- {'multi-label' if multi else 'multi-class'}-image-classification",
        "size_categories:",
        f"- {size_category(_total(card))}",
        "tags:",
        *(f"- {_yaml(t)}" for t in ("ecg", "electrocardiogram", "medical", "webdataset", source["database"])),
        "configs:",
        "- config_name: default",
        "  data_files:",
        *(line for s in splits for line in (f"  - split: {HF_SPLITS[s]}", f"    path: {IMAGES}/{s}-*.tar")),
        "---",
    ]
    name = pretty_name(card)
    per_split = {s: card["counts"].get(s, {}) for s in SPLITS}
    rows = [[c, *(per_split[s].get(c, 0) for s in SPLITS), sum(per_split[s].get(c, 0) for s in SPLITS)]
            for c in classes]
    rows.append(["**windows**", *(windows[s] for s in SPLITS), sum(windows.values())])
    window = card["window"]
    data_files = ", ".join(f'"{HF_SPLITS[s]}": "{IMAGES}/{s}-*.tar"' for s in splits)
    target = ("`KEY.hot`: the multi-hot targets as ASCII `0`/`1`, one per class in the order above" if multi
              else "`KEY.cls`: the label id in ASCII (the position of the class above)")
    body = [
        f"# {name}",
        "",
        *([str(card["description"]).strip(), ""] if str(card.get("description", "")).strip() else []),
        summary(card),
        "",
        *([f"Made by {', '.join(str(c) for c in card['creators'])}.", ""] if card.get("creators") else []),
        "## Classes and splits",
        "",
        f"Classes, by label id: {', '.join(f'{i} = {c}' for i, c in enumerate(classes))}. "
        + ("Windows **with** each class per split (a window counts once for each of its classes, so the "
           "columns do not add up to the windows):" if multi else "Windows per split and class:"),
        "",
        *_table(["class", *(HF_SPLITS[s] for s in SPLITS), "total"], rows),
        "",
        f"The splits are by {card['split_by']} (no two splits share a sample); `validation` is the dataset's "
        f"`val` split.",
        "",
        "## Files",
        "",
        f"- `{IMAGES}/{{split}}-NNNNNN.tar`: webdataset shards; each sample is `KEY.json` (its manifest row), "
        f"`KEY.png` (the rendered window, 8-bit grey) and {target}.",
        f"- `{MANIFEST}`: one row per window ({', '.join(COLUMNS + ((TARGETS,) if multi else ()))}), in the "
        f"order of the shards.",
        f"- `{REFECG}`: the Ref-ECG 1-D set: `/{{split}}/x` float32 (N, {window['length']}) lead sums in mV, "
        f"`/{{split}}/y` the {'multi-hot targets (N, C)' if multi else 'label ids'}, `/{{split}}/key`.",
        f"- `{CARD}`: the card: source, classes, counts, settings, and the sha256 of every other file "
        "(`ecgrender verify DIR` checks them all).",
        "",
        "## Signals and rendering",
        "",
        f"- leads ({card['n_leads']}): {', '.join(card['leads'])}",
        f"- window: {window['length']} samples" + (f" at {window['fs']:g} Hz" if "fs" in window else ""),
        f"- renderer: {card['renderer']}; "
        + ", ".join(f"{k} = {v}" for k, v in sorted(card["render"].items())),
        f"- seed: {card['seed']}",
        "",
        "## How it was made",
        "",
        f"Built with {card['software_version']} (imecgnet-toolkit, dataset format version "
        f"{card['format_version']}) from {source['database']} {source['version']}"
        + (f" ({source['url']})" if source.get("url") else "") + ":",
        "",
        "```",
        str(card.get("command", "(the card does not record the command)")),
        "```",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f"ds = load_dataset(\"webdataset\", data_files={{{data_files}}})",
        "```",
        "",
        "or with the `ecgtrain` loader of imecgnet-toolkit on a local copy of the whole directory.",
        "",
        "## Licence",
        "",
        (f"The source database is distributed under {licence} ({spdx_url(licence)})" if licence
         else "The card records no licence for the source database; see its page")
        + (f"; source: {source['url']}" if source.get("url") else "")
        + (f", DOI [{source['doi']}](https://doi.org/{source['doi']})" if source.get("doi") else "")
        + ". This dataset is derived from it.",
        "",
    ]
    if source.get("citation"):
        body += ["## Citation", "", "Cite the source database:", "", "```bibtex", str(source["citation"]), "```", ""]
    return "\n".join(header + [""] + body)


def render_metadata(root: str | Path, fmt: str) -> str:
    """The text of the description of the dataset at `root` in format `fmt` (one of FORMATS)."""
    if fmt == "croissant":
        return json.dumps(croissant(root), indent=2, ensure_ascii=False) + "\n"
    if fmt == "hf":
        return hf_card(root)
    raise DatasetError(f"unknown metadata format {fmt!r}: use one of {', '.join(FORMATS)}")


def write_metadata(root: str | Path, fmt: str, output: str | Path) -> Path:
    """Write the description of the dataset at `root` to `output`, atomically; refuses a path inside the
    dataset directory (its card checksums its files) or in a missing folder. Returns the path written."""
    text = render_metadata(root, fmt)
    output = Path(output)
    folder = output.resolve().parent
    if output.resolve().is_relative_to(Path(root).resolve()):
        raise DatasetError(
            f"{output} is inside the dataset directory {root}: write it elsewhere (the card checksums the "
            f"dataset's files); copy it next to dataset.json in the published copy"
        )
    if not folder.is_dir():
        raise DatasetError(f"cannot write {output}: folder {folder} does not exist; create it or choose another -o")
    try:
        write_atomic(output, text)
    except OSError as exc:
        raise DatasetError(f"cannot write {output} ({exc.strerror or exc}): choose another -o") from exc
    return output
