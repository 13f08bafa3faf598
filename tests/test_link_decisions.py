"""An analyst's merge and split (``defintel entities merge|split``) are stored and survive re-ingests.

The pages are synthetic, written for this test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.nlp.decisions import Decisions, LinkDecision, split_id
from pipeline.records import Analysis, Document, Entity, Mention
from tests.test_cli import cli

TR_PAGE = """<html lang="tr"><head><title>Kuzey Optik A.Ş. Gəncə'de üretim hattı kuruyor</title></head><body>
<article><h1>Kuzey Optik A.Ş. Gence'de üretim hattı kuruyor</h1>
<p>Sentetik test sayfası. Türk savunma şirketi Kuzey Optik A.Ş., Azerbaycan'ın Gence kentinde termal
kamera üretimi için yeni bir hat kuracağını açıkladı. Şirketin genel müdürü Elvin Karaca, tesisin gelecek
yıl üretime başlayacağını söyledi.</p>
<p>Kuzey Optik A.Ş. ürünlerini Azerbaycan ordusuna teslim edecek. Proje kapsamında yerel mühendislere eğitim
verilecek ve yerli katkı oranı artırılacak.</p>{extra}
</article></body></html>"""

EN_PAGE = """<html lang="en"><head><title>Northern Optics LLC opens thermal camera line in Ganja</title></head><body>
<article><h1>Northern Optics LLC opens thermal camera line in Ganja</h1>
<p>Synthetic test page. Turkish defence firm Northern Optics LLC said it will build a thermal camera
production line in Ganja, Azerbaijan. Its general manager Elvin Karaca said production would start next
year and that local engineers would be trained.</p>
<p>Northern Optics LLC plans to deliver its cameras to the armed forces of Azerbaijan.</p>{extra}
</article></body></html>"""


def _write(folder: Path, extra: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / "tr.html").write_text(TR_PAGE.replace("{extra}", extra), encoding="utf-8")
    (folder / "en.html").write_text(EN_PAGE.replace("{extra}", extra), encoding="utf-8")


def _ids(env: dict[str, str], name: str) -> set[str]:
    rows = json.loads(cli(env, "entities", "--format", "json").stdout)
    return {r["id"] for r in rows if any(name in a for a in [r["canonical"], *r["aliases"]])}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_merge_and_split_survive_a_reingest(
    backend: str, cli_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        cli_env = {**cli_env, "DEFINTEL_DATABASE_URL": request.getfixturevalue("pg_url")}
    pages = tmp_path / "pages"
    _write(pages)
    assert cli(cli_env, "ingest", str(pages)).returncode in (0, 3)
    (tr_id,) = _ids(cli_env, "Kuzey Optik")
    (en_id,) = _ids(cli_env, "Northern Optics")
    assert tr_id != en_id

    merged = cli(cli_env, "entities", "merge", tr_id, en_id, "--reason", "same company", "--format", "json")
    assert merged.returncode == 0, merged.stderr
    row = json.loads(merged.stdout)
    assert row["id"] == tr_id and row["documents"] == 2
    assert any("Northern Optics" in a for a in row["aliases"])
    assert _ids(cli_env, "Northern Optics") == {tr_id}

    # Changed pages are analysed again: the merge still holds.
    _write(pages, extra="<p>Synthetic update paragraph added later.</p>")
    assert cli(cli_env, "ingest", str(pages)).returncode in (0, 3)
    assert _ids(cli_env, "Northern Optics") == {tr_id}
    assert en_id not in {r["id"] for r in json.loads(cli(cli_env, "entities", "--format", "json").stdout)}

    split = cli(cli_env, "entities", "split", tr_id, "Northern Optics", "--format", "json")
    assert split.returncode == 0, split.stderr
    new = json.loads(split.stdout)
    assert new["id"] not in (tr_id, en_id) and new["canonical"] == "Northern Optics" and new["documents"] == 1

    _write(pages, extra="<p>Synthetic second update paragraph.</p>")
    assert cli(cli_env, "ingest", str(pages)).returncode in (0, 3)
    assert _ids(cli_env, "Kuzey Optik") == {tr_id}
    assert new["id"] in _ids(cli_env, "Northern Optics")


def test_bad_linking_decisions_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    _write(pages)
    assert cli(cli_env, "ingest", str(pages)).returncode in (0, 3)
    for args in (
        ("entities", "merge", "x-nosuchid", "x-other"),
        ("entities", "merge", "only-one"),
        ("entities", "split", "x-nosuchid", "Name"),
        ("entities", "frobnicate"),
    ):
        out = cli(cli_env, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1


def test_decisions_apply_to_mentions_parties_and_inflected_names() -> None:
    doc = Document("d1", "file:///x", "tr", "T", None, None, "Görgün'ün ve Görgün")
    a = Entity("p-a", "PERSON", "Haluk Görgün", ("Haluk Görgün",))
    analysis = Analysis(
        doc,
        mentions=(Mention("Görgün'ün", "PERSON", a.canonical, a.entity_id, 0, 9),),
        entities=(a,),
    )
    split = Decisions([LinkDecision("split", "p-a", "Görgün")])
    out = split.apply(analysis)
    assert out.mentions[0].entity_id == split_id("p-a", "Görgün")
    assert out.mentions[0].canonical == "Görgün"
    merge = Decisions([LinkDecision("merge", "p-a", "p-b")], {"p-b": Entity("p-b", "PERSON", "H. Görgün")})
    assert merge.apply(analysis).mentions[0].entity_id == "p-b"
