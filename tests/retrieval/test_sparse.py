from retrieval.sparse import document_vector, query_vector, tokenize


def test_chinese_is_segmented_into_words_and_bigrams():
    terms = tokenize("继续预训练需要多少数据？")
    assert "训练" in terms or "预训练" in terms
    assert "~继续" in terms
    assert "？" not in "".join(terms)


def test_english_is_stemmed_and_stopwords_dropped():
    terms = tokenize("The models were running on GPUs")
    assert "the" not in terms and "were" not in terms
    assert "run" in terms and "model" in terms


def test_document_weights_saturate_with_term_frequency():
    one = document_vector("lora")
    many = document_vector("lora " * 20)
    assert one.indices == many.indices
    assert one.values[0] < many.values[0] < 2.2 * one.values[0]


def test_query_vector_is_unit_weighted_and_deduplicated():
    q = query_vector("lora lora qlora")
    assert len(q.indices) == len(set(q.indices)) == 2
    assert set(q.values) == {1.0}
