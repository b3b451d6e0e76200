"""Query2Label's transformer: a DETR-style encoder over the image tokens and a decoder whose label queries
cross-attend to them (post-norm layers, ReLU feed-forward, dropout 0.1)."""

from __future__ import annotations

import torch
import torch.nn as nn


class EncoderLayer(nn.Module):
    """Self-attention over image tokens (position added to queries and keys only) + feed-forward.

    Shapes:
        src (B, N, d), pos (1 or B, N, d) -> (B, N, d).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(d_model, dim_feedforward, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = src + pos
        src = self.norm(src + self.dropout(self.attn(q, q, src, need_weights=False)[0]))
        return self.ffn(src)


class DecoderLayer(nn.Module):
    """[Self-attention among label queries] + cross-attention to the image tokens + feed-forward.

    Shapes:
        tgt (B, C, d), memory (B, N, d), pos (1 or B, N, d), query_pos (1, C, d) -> (B, C, d).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, self_attention: bool) -> None:
        super().__init__()
        if self_attention:
            self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
            self.self_norm = nn.LayerNorm(d_model)
        self.self_attention = self_attention
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, dim_feedforward, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        if self.self_attention:
            q = tgt + query_pos
            tgt = self.self_norm(tgt + self.dropout(self.self_attn(q, q, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, memory + pos, memory, need_weights=False)[0]
        return self.ffn(self.cross_norm(tgt + self.dropout(attended)))


class FeedForward(nn.Module):
    """Post-norm residual feed-forward block: norm(x + dropout(W2 dropout(relu(W1 x))))."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, d_model),
            nn.Dropout(dropout),
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))


class LabelQueryTransformer(nn.Module):
    """Encoder (``num_encoder_layers``) + decoder (``num_decoder_layers``) + final decoder LayerNorm.

    The decoder's input starts at zero and the label embeddings enter as query positions at every layer, as in
    DETR/Query2Label. ``decoder_self_attention=False`` removes self-attention from every decoder layer (the
    official default); ``dim_feedforward`` defaults to 4 x ``d_model`` (the official R101 setting: 2048 -> 8192); all
    matrices are Xavier-uniform initialised.

    Shapes:
        src (B, N, d), pos (1, N, d), query_embed (C, d) -> label features (B, C, d).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int = 4,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        decoder_self_attention: bool = False,
    ) -> None:
        super().__init__()
        dim_feedforward = dim_feedforward or 4 * d_model
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, nhead, dim_feedforward, dropout, decoder_self_attention)
            for _ in range(num_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, query_embed: torch.Tensor) -> torch.Tensor:
        memory = src
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = query_embed[None]  # (1, C, d)
        tgt = torch.zeros(src.shape[0], *query_embed.shape, device=src.device, dtype=src.dtype)
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos, query_pos)
        return self.decoder_norm(tgt)
