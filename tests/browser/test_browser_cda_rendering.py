"""The CDA rendered as HTML, opened in a real Chromium: a hostile narrative runs nothing there,
and an example of the ANS kit shows its sections."""

from __future__ import annotations

from html import escape
from pathlib import Path

from lxml import etree
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from browsers import screenshot, wait_for
from dmp_xds.dmp.cda.narrative import narrative_html
from dmp_xds.xds.vocabulary import NS_HL7
from factories import ans_example

XHTML = "http://www.w3.org/1999/xhtml"
# Each would set window.pwned if the browser ran it.
HOSTILE = (
    "<script>window.pwned = 1</script>"
    f"<h:script xmlns:h='{XHTML}'>window.pwned = 2</h:script>"
    f"<h:img xmlns:h='{XHTML}' src='x' onerror='window.pwned = 3'/>"
    "<paragraph onclick='window.pwned = 4' style='x'>cliquez</paragraph>"
    "<linkHtml href='javascript:window.pwned = 5' ID='go'>lien</linkHtml>"
    '<paragraph>&lt;img src=x onerror="window.pwned = 6"&gt;</paragraph>'
    f"<h:iframe xmlns:h='{XHTML}' src='javascript:parent.pwned = 7'/>"
    "<renderMultiMedia referencedObject='x'><caption>&lt;svg onload=\"window.pwned = 8\"&gt;</caption>"
    "</renderMultiMedia>"
)


def page(fragment: str, path: Path) -> str:
    """`fragment` in a page of its own, as a file:// URL."""
    path.write_text(
        f'<!doctype html><html lang="fr"><meta charset="utf-8"><title>{escape(path.stem)}</title>{fragment}'
    )
    return path.as_uri()


def hostile_cda() -> bytes:
    root = etree.Element(f"{{{NS_HL7}}}ClinicalDocument", nsmap={None: NS_HL7})
    etree.SubElement(root, f"{{{NS_HL7}}}id", root="1.2.3")
    etree.SubElement(root, f"{{{NS_HL7}}}title").text = "<img src=x onerror='window.pwned = 9'>"
    section = etree.SubElement(
        etree.SubElement(
            etree.SubElement(etree.SubElement(root, f"{{{NS_HL7}}}component"), f"{{{NS_HL7}}}structuredBody"),
            f"{{{NS_HL7}}}component",
        ),
        f"{{{NS_HL7}}}section",
    )
    etree.SubElement(section, f"{{{NS_HL7}}}title").text = "Section piégée"
    section.append(etree.fromstring(f'<text xmlns="{NS_HL7}">{HOSTILE}</text>'))
    return etree.tostring(root)


def test_a_hostile_narrative_runs_nothing_in_chromium(patient_browser: WebDriver, tmp_path: Path) -> None:
    patient_browser.get(page(narrative_html(hostile_cda()), tmp_path / "hostile.html"))
    assert wait_for(patient_browser, "h3").text == "Section piégée"
    for clickable in patient_browser.find_elements(By.CSS_SELECTOR, "p, a, span"):
        clickable.click()
    assert patient_browser.execute_script("return window.pwned === undefined")
    assert patient_browser.execute_script("return document.scripts.length") == 0
    assert "<img src=x" in patient_browser.find_element(By.CSS_SELECTOR, "h2").text


def test_an_ans_example_shows_its_sections_in_chromium(patient_browser: WebDriver, tmp_path: Path) -> None:
    patient_browser.get(page(narrative_html(ans_example("ANEST-CR-ANEST_2022.01.xml")), tmp_path / "anest.html"))
    assert wait_for(patient_browser, "h2").text == "Compte rendu d'anesthésie"
    titles = [h.text for h in patient_browser.find_elements(By.CSS_SELECTOR, "h3, h4, h5, h6")]
    assert "Actes réalisés au cours de l’intervention" in titles
    assert patient_browser.find_elements(By.CSS_SELECTOR, "table th")
    assert screenshot(patient_browser, tmp_path / "anest.png").stat().st_size > 1000
