"""A word-level tokenizer trained on the world's corpus, saved as a transformers tokenizer."""
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from . import vocab as V


def train_tokenizer(corpus_lines):
    """Word-level (one token per world word), trained on the corpus; the world's full word
    list is fed once too, so a word the corpus happens not to use still gets an id."""
    tok = Tokenizer(models.WordLevel(unk_token=V.UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=V.SPECIAL_TOKENS, min_frequency=1)
    tok.train_from_iterator(list(corpus_lines) + [" ".join(V.all_words())], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=V.PAD, eos_token=V.EOS,
                                   unk_token=V.UNK, clean_up_tokenization_spaces=False)
    fast.model_max_length = 1024
    return fast
