"""The HTML report parses, holds the tables, images and references; `spinesim demo` checks its input."""

import json
import re
from html.parser import HTMLParser

import pytest

from planner.cli.commands import main
from planner.pictures.report import MISSING_CITATION, _tradeoff_charts, collect_citations, write_report
from planner.clinical.scorecard import compare_strategies
from planner.clinical.menu import standard_strategies


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    menu = {s.key: s for s in standard_strategies("l2_rcc_escc1a")}
    card = compare_strategies("l2_rcc_escc1a", strategies=[menu["sbrt_24gy_2fx"], menu["best_supportive_care"]],
                              grid_mm=(2.5, 2.5, 2.5))
    folder = tmp_path_factory.mktemp("report")
    path = write_report(card, folder, gap_study=((0.0, 1.0, 2.0), (20.0, 24.0, 26.0), 24.0), three_d=True)
    return card, folder, path


def test_report_is_self_contained_html_with_tables_images_and_references(report):
    card, folder, path = report
    text = path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    body = " ".join(parser.text)
    assert parser.tags.count("table") >= 5  # SINS, prognosis, NOMS, scorecard, estimates, constraints
    assert "teaching and research only" in body and "not for clinical use" in body
    assert "NOMS: SBRT alone" in body
    assert all(image["src"].startswith("data:image/png;base64,") for image in parser.images)
    assert len(parser.images) >= 5  # dose slices, DVH, close-up, trade-offs, gap curve, 3-D views
    assert "http://" not in text.split("<h2>References")[0] and "<script" not in text  # no network fetches
    assert "laufer2013_noms" in body and "sc24" in body  # NOMS and the pain figure are cited


def test_report_writes_the_same_numbers_beside_it(report):
    card, folder, path = report
    data = json.loads((folder / "scorecard.json").read_text())
    assert data["ranking"] == list(card.ranking)
    assert (folder / "scorecard.csv").read_text().startswith("rank,key,strategy")
    pngs = sorted((folder / "images").glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs)


def test_every_cited_source_of_the_scorecard_has_a_citation(report):
    card, _, path = report
    citations = collect_citations()
    text = path.read_text(encoding="utf-8")
    references = text.split("<h2>References</h2>")[1]
    assert MISSING_CITATION not in references
    listed = re.findall(r"<li><b>([^<]+)</b>: ", references)
    assert "laufer2013_noms" in listed and len(listed) >= 10
    for key in listed:
        assert key in citations


def test_report_charts_name_strategies_by_label_without_overlap(report):
    from tests.planner.test_dose_figures import assert_readable

    card, _, _ = report
    charts = _tradeoff_charts(card)
    assert [caption for caption, _ in charts] == ["Strategies: 1-year local control against myelopathy risk",
                                                  "Strategies: chance of walking against surgical complications"]
    named = []
    for _, figure in charts:
        assert_readable(figure)  # no strategy id (sbrt_24gy_2fx) printed, no two texts overlapping
        named += [t.get_text() for t in figure.axes[0].texts + figure.axes[0].get_legend().texts]
    assert "SBRT 24 Gy/2" in named and "Best supportive care" in named


def test_report_refuses_a_file_as_folder(tmp_path, report):
    card, _, _ = report
    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        write_report(card, target, three_d=False)


def test_demo_bad_output_folder(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    assert main(["demo", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_in_process(tmp_path, capsys):
    """`spinesim demo` end to end (about a minute): scorecard printed, report and data written."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NOMS: Separation surgery + stabilisation, then SBRT" in printed
    assert "maximum achievable prescription" in printed and "not for clinical use" in printed
    for name in ("report.html", "scorecard.json", "scorecard.csv", "timeline.json"):
        assert (out / name).stat().st_size > 0
    timeline = json.loads((out / "timeline.json").read_text())
    assert [p["weeks"] for p in timeline["points"]] == [0.0, 4.0, 8.0, 12.0]
    assert len(list((out / "images").glob("*.png"))) >= 15
