"""A small causal Transformer of our own, in the manner of GPT-2 and nanoGPT.

Pre-norm blocks (LayerNorm, causal multi-head self-attention, LayerNorm, a 4x MLP with
GELU), learned position embeddings, the output layer tied to the input embedding. Heads
are 4 where ``width`` divides by 4 (else 2, else 1). It reads ``corpus.CONTEXT``
characters at once and trains with the loop in ``training.py`` (what the ``data``,
``epochs`` and ``steps`` dials mean is written there).

The defaults are small enough for one CPU core: 2 layers of width 64 (about 0.1 M
parameters), 300 steps over 2% of the training text seen twice: about 10 s.
"""

import torch
import torch.nn.functional as F
from torch import nn

import pursuit
from pursuit import Float, Int

import corpus
import training


class Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, vocab: int, layers: int, width: int, dropout: float = 0.0,
                 context: int = corpus.CONTEXT):
        super().__init__()
        heads = next(h for h in (4, 2, 1) if width % h == 0)
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied, as in GPT-2
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        places = torch.arange(codes.shape[1], device=codes.device)
        x = self.drop(self.embed(codes) + self.position(places))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


@pursuit.method(source="ours")
def transformer(trial, *,
                layers=Int(1, 4, default=2, scale="params"),  # Transformer blocks
                width=Int(16, 128, log=True, default=64, scale="params"),  # model width
                steps=Int(50, 2000, log=True, default=300, scale="steps"),  # updates
                data=Float(0.002, 0.1, log=True, default=0.02, scale="data"),  # share of the text
                epochs=Float(0.5, 8.0, log=True, default=2.0, scale="epochs"),  # passes
                lr=Float(3e-4, 1e-2, log=True, default=1e-3),  # AdamW's peak learning rate
                dropout=Float(0.0, 0.3, default=0.0)):  # on embeddings, attention, MLP
    """Train the Transformer as the dials say; the validation bpc at the end."""
    trial.seed_everything()  # the init (torch) and the data's order (numpy, by trial.seed)
    source = corpus.load()
    model = Transformer(len(source.vocab), layers, width, dropout)
    return training.train(trial, model, source, data=data, epochs=epochs, steps=steps,
                          lr=lr, weight_decay=0.1)
