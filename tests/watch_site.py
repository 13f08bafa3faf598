"""A small synthetic news site for the watchlist and revisit tests (pages authored for the tests,
marked ``defintel:synthetic``), served by pytest-httpserver with ETags and 304 answers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TEMPLATE = """<!doctype html>
<html lang="{lang}">
<head>
  <meta charset="utf-8">
  <meta name="defintel:synthetic" content="true">
  <title>{title}</title>
  <meta property="og:type" content="article">
  <meta property="og:title" content="{title}">
  <meta property="article:published_time" content="{published}T08:00:00+00:00">
</head>
<body>
  <nav><a href="/">Synthetic Defence Wire</a> <a href="/land/">Land</a> <a href="/sea/">Sea</a></nav>
  <main>
    <article>
      <h1>{title}</h1>
      <p class="byline">By <span class="author-name">Test Desk</span></p>
      {paragraphs}
      <p>This article is synthetic: written for the defintel test suite, it reports no real event.</p>
    </article>
  </main>
  <footer>© Synthetic Defence Wire. Test fixture.</footer>
</body>
</html>
"""


def page(lang: str, title: str, published: str, *paragraphs: str) -> str:
    body = "\n      ".join(f"<p>{p}</p>" for p in paragraphs)
    return TEMPLATE.format(lang=lang, title=title, published=published, paragraphs=body)


FILLER_EN = (
    "Industry officials said the work would be carried out in stages over the coming years, with "
    "training for engineers and technicians planned alongside the deliveries."
)
FILLER_TR = (
    "Sektör yetkilileri çalışmanın önümüzdeki yıllarda aşamalar halinde yürütüleceğini, teslimatlarla "
    "birlikte mühendis ve teknisyenlere eğitim verileceğini söyledi."
)
FILLER_AZ = (
    "Sənaye rəsmiləri işlərin qarşıdakı illərdə mərhələlərlə aparılacağını, tədarüklə yanaşı mühəndis və "
    "texniklər üçün təlim keçiriləcəyini bildiriblər."
)


def old_deal(amount: str) -> str:
    return page(
        "en",
        "Roketsan and Azersilah sign rocket motor contract",
        "2025-05-12",
        f"Roketsan signed a ${amount} million contract with Azersilah on Monday for the production of "
        "rocket motors at the Azersilah plant in Baku.",
        "The agreement covers the transfer of assembly tooling and quality procedures to the Azerbaijani "
        "company, which will deliver the first motors next year.",
        FILLER_EN,
    )


RUN1 = {
    "/en/roketsan-azersilah-motors": old_deal("120"),
    "/tr/otokar-zirhli-arac": page(
        "tr",
        "Otokar yeni zırhlı aracını Ankara'da tanıttı",
        "2025-05-14",
        "Otokar, yeni zırhlı aracının ilk örneğini Ankara'daki tesislerinde düzenlenen törenle tanıttı.",
        "Şirket, aracın ihracat pazarlarında da sunulacağını açıkladı.",
        FILLER_TR,
    ),
    "/az/aselsan-gence": page(
        "az",
        "Aselsan Gəncədə yeni xidmət mərkəzi açıb",
        "2025-05-15",
        "Aselsan Gəncədə elektron sistemlər üçün yeni xidmət mərkəzi açıb.",
        "Mərkəzdə yerli mütəxəssislər çalışacaq.",
        FILLER_AZ,
    ),
}

# Run 2: three new articles (tr: the watched entity under its Turkish spelling with a suffix; en: only
# the watched query; az: nothing watched) and the old article corrected ($120M → $150M).
NEW_ENTITY_TR = "/tr/azersilah-ziyaret"
NEW_QUERY_EN = "/en/stm-unmanned-surface-vessel"
NEW_NOTHING_AZ = "/az/otokar-zirehli"
RUN2 = {
    **RUN1,
    "/en/roketsan-azersilah-motors": old_deal("150"),
    NEW_ENTITY_TR: page(
        "tr",
        "Azersilah'ın Bakü fabrikasında yeni üretim hattı",
        "2025-06-02",
        "Azersilah'ın Bakü'deki fabrikasında yeni bir üretim hattı devreye alındı.",
        "Törene Sumqayıt Teknoloji Parkı yöneticileri de katıldı.",
        FILLER_TR,
    ),
    NEW_QUERY_EN: page(
        "en",
        "STM unveils an unmanned surface vessel prototype",
        "2025-06-03",
        "STM unveiled an unmanned surface vessel prototype for coastal patrol duties in Istanbul.",
        "The company said sea trials would begin in the autumn.",
        FILLER_EN,
    ),
    NEW_NOTHING_AZ: page(
        "az",
        "Otokar yeni zirehli maşınını nümayiş etdirib",
        "2025-06-04",
        "Otokar yeni zirehli maşınını Ankarada keçirilən sərgidə nümayiş etdirib.",
        "Şirkət maşının ixrac bazarlarına da təqdim ediləcəyini bildirib.",
        FILLER_AZ,
    ),
}


@dataclass
class Site:
    """The site's pages (path → HTML), switchable between runs, and what it answered."""

    server: HTTPServer
    pages: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, int, bool]] = field(default_factory=list)  # (path, status, had validator)

    def serve(self) -> None:
        self.server.expect_request("/robots.txt").respond_with_data("", status=404)
        self.server.expect_request("/sitemap.xml").respond_with_handler(self._sitemap)
        for path in sorted({*RUN1, *RUN2}):
            self.server.expect_request(path).respond_with_handler(self._page)

    @property
    def sitemap_url(self) -> str:
        return self.server.url_for("/sitemap.xml")

    def _sitemap(self, request: Request) -> Response:
        locs = "".join(f"<url><loc>{self.server.url_for(p)}</loc></url>" for p in sorted(self.pages))
        body = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        return Response(body, content_type="application/xml")

    def _page(self, request: Request) -> Response:
        html = self.pages.get(request.path)
        if html is None:
            return Response("not found", status=404)
        etag = '"' + hashlib.sha1(html.encode()).hexdigest()[:16] + '"'
        asked = request.headers.get("If-None-Match")
        if asked == etag:
            self.answers.append((request.path, 304, True))
            return Response(status=304, headers={"ETag": etag})
        self.answers.append((request.path, 200, asked is not None))
        return Response(html, content_type="text/html; charset=utf-8", headers={"ETag": etag})
